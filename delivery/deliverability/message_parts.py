"""A received message read safely: parsed with bounds, headers as plain text, parts, body text.

Rules:
- Only the first `MAX_BYTES` are parsed. Reports put their machine-readable
  parts before the returned message, so a large attachment costs nothing.
- The compat32 policy never raises on bad headers; what it could not parse is
  kept as defect names.
- Header values are unfolded, RFC 2047 words are decoded only where asked
  (subjects), and undecodable bytes are replaced, so callers get `str`.
- Payloads are read through `payload`: compat32's `get_payload()` decodes an
  8-bit body with the part's declared charset and raises for some (idna).
- Parts are those of the report itself: the walk does not enter attached
  messages (message/rfc822), so a forwarded bounce is not a bounce.
"""

import codecs
import email
import html
import re
from collections.abc import Iterable
from email import errors
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from email.policy import compat32
from typing import NamedTuple

MAX_BYTES = 128 * 1024
MAX_TEXT = 32 * 1024
_MAX_DEPTH = 6
_MAX_PARTS = 64
_FOLD = re.compile(r"\r?\n[ \t]*")
_FIELD = re.compile(r"([!-9;-~]+):[ \t]*(.*)")
_TAG = re.compile(r"<[^>]{0,2000}>")
# Codecs for domain names; punycode is also quadratic on long input.
_REFUSED_CODECS = frozenset({"punycode", "idna"})
HEADER_TYPES = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"}
)


class Part(NamedTuple):
    """A MIME part and its content type, read once (each read scans the part's headers)."""

    message: Message
    type: str


class Headers:
    """Header fields by lower-case name, in order; indexed and unfolded only when read."""

    __slots__ = ("_fields", "_items")

    def __init__(self, items: Iterable[tuple[str, object]]) -> None:
        self._items = items
        self._fields: dict[str, list[object]] | None = None

    def _index(self) -> dict[str, list[object]]:
        if self._fields is None:
            fields: dict[str, list[object]] = {}
            for name, value in self._items:
                fields.setdefault(name.strip().lower(), []).append(value)
            self._fields = fields
        return self._fields

    def get(self, name: str) -> str | None:
        values = self._index().get(name)
        return _plain(values[0]) if values else None

    def all(self, name: str) -> list[str]:
        return [_plain(value) for value in self._index().get(name, ())]

    def __contains__(self, name: str) -> bool:
        return name in self._index()

    def __bool__(self) -> bool:
        return bool(self._index())


def _plain(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if "\n" in text:
        text = _FOLD.sub(" ", text)
    if not text.isascii():
        # compat32 keeps undecodable header bytes as surrogate escapes.
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text.strip()


def decoded(value: str | None) -> str:
    """A header value with its RFC 2047 encoded words decoded, as far as they decode."""
    if not value:
        return ""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, UnicodeError, AssertionError, errors.MessageError):
        return value


def parse(raw: bytes) -> tuple[Message, list[str]]:
    """The message of the first `MAX_BYTES` of `raw`, and what was left out or not understood."""
    notes: list[str] = []
    if len(raw) > MAX_BYTES:
        cut = raw.rfind(b"\n", 0, MAX_BYTES)
        raw = raw[: cut + 1 if cut > 0 else MAX_BYTES]
        notes.append(f"only the first {len(raw)} bytes read")
    try:
        return email.message_from_bytes(raw), notes
    except RecursionError:
        # The parser recurses once per nested multipart; read such a message as headers and text.
        notes.append("MIME parts nested too deep to read")
        return BytesHeaderParser(policy=compat32).parsebytes(raw), notes


def headers_of(message: Message) -> Headers:
    return Headers(list(message.raw_items()))


def parts(message: Message) -> list[Part]:
    """The message and its MIME parts, depth first, without entering attached messages."""
    found: list[Part] = []
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack and len(found) < _MAX_PARTS:
        part, depth = stack.pop()
        content_type = part.get_content_type()
        found.append(Part(part, content_type))
        if depth >= _MAX_DEPTH or content_type.startswith("message/") or not part.is_multipart():
            continue
        children = payload(part)
        if isinstance(children, list):
            stack.extend((child, depth + 1) for child in reversed(children))
    return found


def payload(part: Message) -> list[Message] | str:
    """The part's sub-messages, or its body as text (transfer encoding undone, bounded)."""
    if part.is_multipart():
        items = part.get_payload()
        return (
            [item for item in items if isinstance(item, Message)] if isinstance(items, list) else []
        )
    return _text(payload_bytes(part), None)


def _as_written(part: Message) -> str:
    """The part's body before any transfer decoding (it may hold header lines)."""
    if part.is_multipart():
        return ""
    try:
        body = part.get_payload()
    except (LookupError, UnicodeError, ValueError):
        return _text(payload_bytes(part), None)
    return body if isinstance(body, str) else ""


def defects(found: Iterable[Part]) -> list[str]:
    return [type(defect).__name__ for part in found for defect in part.message.defects]


def payload_bytes(part: Message, limit: int = MAX_TEXT) -> bytes:
    """The part's body with its transfer encoding undone, at most `limit` bytes."""
    body = part.get_payload(decode=True)
    return body[:limit] if isinstance(body, bytes) else b""


def text_of(part: Message, limit: int = MAX_TEXT) -> str:
    """The part's body as text, in its charset when that is a known text encoding."""
    return _text(payload_bytes(part, limit), _charset(part))


def _text(data: bytes, charset: str | None) -> str:
    if charset is not None:
        try:
            return data.decode(charset, "replace")
        except (LookupError, UnicodeError, ValueError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _charset(part: Message) -> str | None:
    try:
        name = part.get_content_charset()
        info = codecs.lookup(name) if name else None
    except (LookupError, ValueError, UnicodeError, TypeError):
        return None
    if info is None or info.name in _REFUSED_CODECS:
        return None
    return info.name


def body_text(found: list[Part], limit: int = MAX_TEXT) -> str:
    """The first text/plain part's text; else the first text/html part's, with tags removed."""
    for wanted in ("text/plain", "text/html"):
        for part in found:
            if part.type == wanted and not part.message.is_multipart():
                text = text_of(part.message, limit)
                return html.unescape(_TAG.sub(" ", text)) if wanted == "text/html" else text
    # A multipart without its boundary is parsed as one body.
    broken = next((p for p in found if p.type.startswith("multipart/")), None)
    return text_of(broken.message, limit) if broken and not broken.message.is_multipart() else ""


def embedded_headers(part: Part) -> Headers | None:
    """The headers of an attached message or of a text/rfc822-headers part."""
    if part.type not in HEADER_TYPES:
        return None
    inner = payload(part.message)
    if isinstance(inner, list):
        first = inner[0] if inner else None
        return _lenient_headers(first) if isinstance(first, Message) else None
    parser = BytesHeaderParser(policy=compat32)
    return _lenient_headers(parser.parsebytes(payload_bytes(part.message)))


def headers_in_text(text: str) -> tuple[Headers, str | None]:
    """The header block at the start of `text` (a message quoted in a bounce), and the
    envelope sender of the mbox `From ` line before it, if there is one."""
    text = text.lstrip("\r\n")
    sender = None
    if text.startswith("From "):
        first, _, text = text.partition("\n")
        words = first.split()
        sender = words[1] if len(words) > 1 and "@" in words[1] else None
    return _lenient_headers(HeaderParser(policy=compat32).parsestr(text[:MAX_TEXT])), sender


def _lenient_headers(message: Message) -> Headers:
    """The message's headers, and those after a line that stopped the parser.

    A returned message is sometimes re-wrapped so that a folded line loses its
    indentation; the parser then ends the headers there. Such a line is read as
    the continuation of the field before it, up to the first empty line.
    """
    items: list[tuple[str, object]] = list(message.raw_items())
    stopped = any(isinstance(d, errors.MissingHeaderBodySeparatorDefect) for d in message.defects)
    rest = _as_written(message) if stopped else None
    if not rest:
        return Headers(items)
    for line in rest[:MAX_TEXT].splitlines():
        if not line.strip():
            break
        field = _FIELD.match(line)
        if field is not None:
            items.append((field.group(1), field.group(2)))
        elif items:
            name, value = items[-1]
            items[-1] = (name, f"{value} {line.strip()}")
    return Headers(items)
