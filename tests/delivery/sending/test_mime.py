"""The composed MIME bytes read back, through the standard library, as what went in."""

import binascii
from email import message_from_bytes
from email.policy import default
from email.utils import parseaddr

from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.sending import mime

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
NAME = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=100
)
LINE = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=200
)


def _read(data: bytes):  # type: ignore[no-untyped-def]
    return message_from_bytes(data, policy=default)


@settings(max_examples=300, deadline=None)
@given(subject=LINE, name=NAME, text=TEXT, html=TEXT)
def test_headers_and_parts_read_back_as_they_were_written(subject, name, text, html):
    data = mime.compose(
        [("From", mime.mailbox("news@shop.example", name)), ("To", "ann@example.org"),
         ("Subject", mime.text_value(subject))],
        text, html,
    )  # fmt: skip
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    parsed = _read(data)
    assert str(parsed["Subject"]) == " ".join(subject.split())
    shown, address = parseaddr(str(parsed["From"]))
    assert address == "news@shop.example"
    assert shown == " ".join(name.split())
    normalize = lambda s: s.replace("\r\n", "\n").replace("\r", "\n")  # noqa: E731
    assert normalize(parsed.get_body(("plain",)).get_content()) == normalize(text)
    assert normalize(parsed.get_body(("html",)).get_content()) == normalize(html)


def test_a_value_cannot_add_a_header():
    data = mime.compose([("Subject", mime.text_value("Hi\r\nBcc: victim@example.org"))], "x", "y")
    parsed = _read(data)
    assert parsed["Bcc"] is None
    assert str(parsed["Subject"]) == "Hi Bcc: victim@example.org"


def _quoted_printable_a_line_at_a_time(text: str) -> bytes:
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    return b"\r\n".join(
        binascii.b2a_qp(line.encode(), quotetabs=False, istext=True, header=False).replace(
            b"\n", b"\r\n"
        )
        for line in normalized.split("\n")
    )


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(st.sampled_from(["", " ", "\t", "=", "é", ".", "a" * 70, "b " * 40,
                                        "long line of the template " * 5, "x\t ", "\r\n", "\r",
                                        "x" * 75 + " ", "x" * 74 + "\t"]),
                      max_size=12))  # fmt: skip
def test_a_text_without_table_rows_is_each_of_its_lines_encoded(lines):
    text = "\n".join(lines)
    # Twice: the second time, the text comes from the cache.
    for encoded in (mime._quoted_printable(text), mime._quoted_printable(text)):
        assert encoded == _quoted_printable_a_line_at_a_time(text)
        assert all(len(physical) <= 76 for physical in encoded.split(b"\r\n"))


ROW = st.sampled_from(['<tr><td style="padding:0">', "Hi Ann, ", "é ", "=", " ", "\t", "x" * 90,
                       "</td></tr>", "<tr", ".", "a" * 75 + " ", "x" * 74 + "é", "x" * 73 + "=",
                       "x" * 75, "\n", " \n", "\t\n", "=\n", "x" * 80 + "\n", '<body style="a">',
                       "<body", "<head><title>Hi</title></head>"])  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(ROW, min_size=20, max_size=120))
def test_a_text_encoded_a_table_row_at_a_time_reads_back_as_it_was(pieces):
    line = "".join(pieces) * 4
    text = f"before\n{line}\nafter"
    # Twice: the second time, the rows come from the cache.
    for encoded in (mime._quoted_printable(text), mime._quoted_printable(text)):
        assert all(len(physical) <= 76 for physical in encoded.split(b"\r\n"))
        undone = binascii.a2b_qp(encoded.replace(b"\r\n", b"\n"))
        assert undone.decode() == text
