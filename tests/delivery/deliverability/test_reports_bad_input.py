"""`classify` on input built to break it: it answers as far as it can and never raises."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery.deliverability.reports import Report, classify
from tests.delivery.deliverability.test_reports import DSN_WITH_HEADERS, ENTRIES, FIXTURES

FIXTURE_BYTES = [(FIXTURES / str(e["file"])).read_bytes() for e in ENTRIES]


def _sound(report: Report) -> Report:
    assert isinstance(report, Report)
    assert not [d for d in report.defects if d.startswith("internal error")], report.defects
    assert report.bounce_class in {"hard", "soft", "complaint", "none"}
    assert len(report.statuses) == len(report.recipients)
    return report


def _crlf(text: str) -> bytes:
    return text.lstrip("\n").replace("\n", "\r\n").encode("latin-1")


def test_empty_bytes_are_other_mail():
    assert _sound(classify(b"")).manifest_fields() == {
        "kind": "other", "class": "none", "recipients": [], "status": None,
    }  # fmt: skip


def test_binary_garbage_is_other_mail():
    garbage = bytes(range(256)) * 64 + b"\x00\xff\r\r\n\n--\x00" * 100
    assert _sound(classify(garbage)).kind == "other"


def test_a_multipart_report_without_a_boundary_is_read_as_far_as_it_goes():
    report = _sound(
        classify(
            _crlf("""
From: MAILER-DAEMON@mx.example.net
Subject: Returned mail: see transcript for details
Content-Type: multipart/report; report-type=delivery-status

----- The following addresses had permanent fatal errors -----
<kate@example.org>
    (reason: 550 5.1.1 User unknown)
""")
        )
    )
    assert (report.kind, report.bounce_class, report.recipients) == (
        "dsn", "hard", ("kate@example.org",),
    )  # fmt: skip
    assert "NoBoundaryInMultipartDefect" in report.defects


def test_malformed_headers_and_parts_do_not_stop_the_report():
    raw = _crlf("""
From MAILER-DAEMON Mon Jun  1 10:00:00 2026
From: MAILER-DAEMON@mx.example.net
Subject: =?bogus-charset?Q?Undeliverable?= =?utf-8?B?!!!not-base64?=
This line is no header at all
Content-Type: multipart/report; report-type=delivery-status; boundary="z"

--z
Content-Type: text/plain; charset="x-klingon"
Content-Transfer-Encoding: base64

!!!! this is not base64 ####
--z
Content-Type: message/delivery-status
Content-Type: text/plain

Final-Recipient: rfc822; leo@example.org
Action: failed
Status: 5.1.1
--z--
""")
    _sound(classify(raw))


@pytest.mark.parametrize("charset", ["x-unknown-klingon", "punycode", "idna", "base64", "utf-8"])
def test_a_wrong_or_unknown_charset_still_gives_the_recipient(charset):
    body = "Your message could not be delivered to:\n\n  mia@example.org\n    550 5.1.1 unknown user \u00e9\n"
    raw = (
        _crlf(f"""
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
Subject: Mail delivery failed
Content-Type: text/plain; charset="{charset}"
Content-Transfer-Encoding: 8bit

""")
        + body.encode("utf-8")[:-3]
        + b"\xff\xfe\xc3\r\n"
    )
    report = _sound(classify(raw))
    assert (report.bounce_class, report.recipients, report.status) == (
        "hard", ("mia@example.org",), "5.1.1",
    )  # fmt: skip


def test_a_20_mb_attachment_in_the_returned_message_is_not_read():
    big = b"QUJD" * 19 + b"\r\n"
    attachment = big * (20 * 1024 * 1024 // len(big))
    raw = (
        DSN_WITH_HEADERS.replace(b"--b1--\r\n", b"")
        + b"--b1\r\nContent-Type: application/octet-stream\r\n"
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + attachment
        + b"--b1--\r\n"
    )
    assert len(raw) > 20 * 1024 * 1024
    report = _sound(classify(raw))
    assert report.manifest_fields()["recipients"] == ["ann@example.org", "bob@example.org"]
    assert report.original_message_id is not None
    assert any(d.startswith("only the first") for d in report.defects)


def test_a_20_mb_plain_message_is_other_mail():
    raw = b"From: a@example.com\r\nSubject: hi\r\n\r\n" + b"x" * (20 * 1024 * 1024)
    assert _sound(classify(raw)).kind == "other"


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.7, 0.9])
def test_a_truncated_report_gives_what_it_still_holds(cut):
    raw = DSN_WITH_HEADERS[: int(len(DSN_WITH_HEADERS) * cut)]
    report = _sound(classify(raw))
    assert report.kind in {"dsn", "other"}


def test_a_report_cut_after_its_status_part_keeps_its_recipients():
    raw = DSN_WITH_HEADERS[: DSN_WITH_HEADERS.index(b"Content-Type: text/rfc822-headers")]
    report = _sound(classify(raw))
    assert report.recipients == ("ann@example.org", "bob@example.org")


def test_deeply_nested_multiparts_do_not_exhaust_the_stack():
    depth = 3000
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (i, i)
        for i in range(depth)
    )
    _sound(classify(b"From: a@example.com\r\n" + head + b"Content-Type: text/plain\r\n\r\nx\r\n"))


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw):
    _sound(classify(raw))


_MARKERS = [
    b"\r\n", b"\n", b"--", b": ", b"Content-Type: multipart/report; boundary=", b"\x00",
    b"=?utf-8?q?", b"Status: 5.", b"Final-Recipient: rfc822;", b"<", b">", b"@", b";",
]  # fmt: skip
_EDIT = st.tuples(
    st.floats(min_value=0, max_value=1),
    st.sampled_from(["insert", "delete", "replace", "truncate"]),
    st.one_of(st.sampled_from(_MARKERS), st.binary(min_size=1, max_size=40)),
)


@pytest.mark.skipif(not FIXTURE_BYTES and not os.environ.get("CI"), reason="no mail fixtures")
@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(index=st.integers(min_value=0), edits=st.lists(_EDIT, min_size=1, max_size=8))
def test_mutated_fixtures_never_raise(index, edits):
    assert FIXTURE_BYTES, f"no mail fixtures in {FIXTURES}"
    raw = bytearray(FIXTURE_BYTES[index % len(FIXTURE_BYTES)])
    for where, how, piece in edits:
        at = int(where * len(raw))
        if how == "insert":
            raw[at:at] = piece
        elif how == "delete":
            del raw[at : at + len(piece)]
        elif how == "replace":
            raw[at : at + len(piece)] = piece
        else:
            del raw[at:]
    _sound(classify(bytes(raw)))
