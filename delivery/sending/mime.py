"""A message's MIME bytes, composed directly: headers, a text part and an HTML alternative.

The standard library's `email` package builds a message through header
objects, policies and a generator, the largest cost of a campaign worker's
message (bench/README.md, "Sending"). The bytes a campaign needs are simple and always
the same shape, so they are written here: RFC 5322 headers (RFC 2047
encoded words for anything that is not plain ASCII), and a
multipart/alternative body whose two parts are quoted-printable UTF-8
(`binascii`, in C). Tests parse the result back with the `email` package.
"""

import base64
import binascii
import secrets
from collections import OrderedDict
from collections.abc import Sequence

MAX_PLAIN = 900  # characters of a header value written as it is (lines end by 998)
_WORD_BYTES = 45  # UTF-8 bytes per encoded word, so that each stays under 76 characters
_SPECIALS = frozenset('()<>[]:;@\\,."')


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _words(value: str) -> str:
    """RFC 2047 encoded words (base64, UTF-8), folded; characters are never split."""
    chunks: list[str] = []
    current = b""
    for ch in value:
        encoded = ch.encode()
        if current and len(current) + len(encoded) > _WORD_BYTES:
            chunks.append(current.decode())
            current = b""
        current += encoded
    if current:
        chunks.append(current.decode())
    return "\r\n ".join(
        f"=?utf-8?b?{base64.b64encode(chunk.encode()).decode()}?=" for chunk in chunks
    )


def text_value(value: str) -> str:
    """An unstructured header value (Subject), encoded when it must be."""
    cleaned = _one_line(value)
    if cleaned.isascii() and len(cleaned) <= MAX_PLAIN and "=?" not in cleaned:
        return cleaned
    return _words(cleaned)


def mailbox(address: str, name: str | None = None) -> str:
    """`Name <address>` with the name quoted or encoded as it needs."""
    if not name:
        return address
    cleaned = _one_line(name)
    if not cleaned.isascii() or "=?" in cleaned:
        # One word: readers join a phrase's words with a space (the name is short).
        word = f"=?utf-8?b?{base64.b64encode(cleaned.encode()).decode()}?="
        return f"{word if len(word) <= MAX_PLAIN else _words(cleaned)} <{address}>"
    if any(ch in _SPECIALS for ch in cleaned):
        quoted = cleaned.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return f"{cleaned} <{address}>"


class _PieceCache:
    """Quoted-printable pieces already encoded, the most recently used kept.

    Most of a campaign's HTML is the template's, the same for every
    recipient: those pieces are encoded once, and kept both as they end a
    part and as another piece follows them. Pieces are UTF-8 bytes:
    splitting and hashing bytes costs less than the same on a string with any
    character beyond Latin-1.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.pieces: OrderedDict[bytes, tuple[bytes, bytes]] = OrderedDict()

    def encoded(self, piece: bytes) -> tuple[bytes, bytes]:
        """The piece encoded: alone, and followed by another piece (with a soft line break,
        unless it ends a line)."""
        found = self.pieces.get(piece)
        if found is not None:
            self.pieces.move_to_end(piece)
            return found
        alone = _encoded(piece)
        found = alone, alone if alone.endswith(b"\r\n") else _soft_break_after(alone)
        if len(piece) >= _CACHED_PIECE:
            self.pieces[piece] = found
            if len(self.pieces) > self.size:
                self.pieces.popitem(last=False)
        return found


def _encoded(piece: bytes) -> bytes:
    encoded = binascii.b2a_qp(piece, quotetabs=False, istext=True, header=False)
    # binascii lets a line whose last space it escapes before a line break run to 78
    # characters; a line alone, its space is the data's end, which it gets right.
    spaced = b" \n" in piece or b"\t\n" in piece
    if spaced and any(len(line) > _MAX_QP_LINE for line in encoded.split(b"\n")):
        encoded = b"\n".join(
            binascii.b2a_qp(line, quotetabs=False, istext=True, header=False)
            for line in piece.split(b"\n")
        )
    return encoded.replace(b"\n", b"\r\n")


_CACHED_PIECE = 64  # bytes; a shorter piece costs less to encode than to look up
_pieces = _PieceCache(512)
# MJML writes a message's HTML as a head, then the body's opening (with its
# preheader), then table rows, the recipient's values in a few of them: the
# text is encoded a piece at a time, so that the pieces the recipients share
# come from the cache.
_ROW = b"<tr"
_BODY = b"<body"
_MAX_QP_LINE = 76  # characters, the soft break's "=" included (RFC 2045)


def _soft_break_after(encoded: bytes) -> bytes:
    """`encoded` and a soft line break, its last line first cut if the "=" would make it too long."""
    if len(encoded) - encoded.rfind(b"\n") - 1 < _MAX_QP_LINE:
        return encoded + b"=\r\n"
    cut = len(encoded) - (3 if encoded[-3:-2] == b"=" else 1)  # never inside an escape
    return encoded[:cut] + b"=\r\n" + encoded[cut:] + b"=\r\n"


def _quoted_printable(text: str) -> bytes:
    raw = text.encode()
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    first, *rows = raw.split(_ROW)
    if not rows:
        return _pieces.encoded(first)[0]
    pieces = [_pieces.encoded(_ROW + row) for row in rows]
    head, body, opening = first.partition(_BODY)
    for piece in (body + opening, head) if body else (head,):
        if piece:
            pieces.insert(0, _pieces.encoded(piece))
    # Each piece starts a line: one that ends inside a line ends with a soft line break,
    # so that read back, the two are one line again.
    return b"".join([followed for _, followed in pieces[:-1]] + [pieces[-1][0]])


def compose(headers: Sequence[tuple[str, str]], text: str, html: str) -> bytes:
    """The message: `headers` in order (values already safe), then text and HTML alternatives."""
    boundary = f"=_{secrets.token_hex(16)}"
    lines = [f"{name}: {value}" for name, value in headers]
    lines += ["MIME-Version: 1.0", f'Content-Type: multipart/alternative; boundary="{boundary}"']
    head = "\r\n".join(lines).encode()
    part = (
        "Content-Type: text/{}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    separator = f"\r\n--{boundary}\r\n".encode()
    return b"".join((
        head, b"\r\n\r\n", f"--{boundary}\r\n".encode(),
        part.format("plain").encode(), _quoted_printable(text),
        separator, part.format("html").encode(), _quoted_printable(html),
        f"\r\n--{boundary}--\r\n".encode(),
    ))  # fmt: skip
