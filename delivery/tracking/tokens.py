"""Signed open and click tokens: everything a hit needs, without a database read.

Layout (version 1), then URL-safe base64 without padding:

    version    1 byte   1
    kind       1 byte   1 open, 2 click; bit 0x80 set when the URL is deflated
    workspace  16 bytes UUID
    delivery   16 bytes UUID
    link       2 bytes  unsigned, big-endian; 0 for an open
    issued     4 bytes  unsigned Unix seconds, big-endian
    url        rest     clicks only: UTF-8, or raw deflate with `_URL_WORDS` as preset dictionary
    mac        12 bytes HMAC-SHA256 of all of the above, truncated

The MAC key is HMAC-SHA256(secret, b"tracking:" + workspace bytes), so a token
cannot be moved to another workspace. `_URL_WORDS` is part of the format: changing it needs a new
version.
"""

import base64
import binascii
import hmac
import re
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Final
from uuid import UUID

VERSION: Final = 1
MAX_TOKEN_LENGTH: Final = 4096
MAX_URL_BYTES: Final = 2048
MAX_LINK: Final = 0xFFFF
_MAX_SECONDS: Final = 0xFFFFFFFF

_HEADER: Final = struct.Struct(">BB16s16sHI")
_MAC_BYTES: Final = 12
_OPEN: Final = 1
_CLICK: Final = 2
_DEFLATED: Final = 0x80
_KEY_CACHE_SIZE: Final = 10_000

# Deflate only pays off once a URL has a query string or a long path.
_DEFLATE_FROM: Final = 40
_WINDOW_BITS: Final = -9  # raw deflate, 512-byte window: URLs are short
_URL_WORDS: Final = (
    b".html.php?id=&ref=utm_term=&utm_content=&utm_id="
    b"?utm_source=newsletter&utm_medium=email&utm_campaign=https://www."
)

_ALPHABET: Final = re.compile(r"[A-Za-z0-9_-]+")
_TRACKABLE: Final = re.compile(r"https?://[^ /?#\\\x00-\x1f\x7f][^\x00-\x1f\x7f]*", re.IGNORECASE)


class Kind(Enum):
    OPEN = "o"
    CLICK = "c"


@dataclass(frozen=True)
class Tracked:
    kind: Kind
    workspace_id: UUID
    delivery_id: UUID
    link: int
    url: str | None
    issued: datetime


class TokenError(Exception):
    """Malformed, tampered, for another workspace, or of the wrong kind."""


class ExpiredTokenError(TokenError):
    """Authentic but older than the lifetime."""

    def __init__(self, tracked: Tracked) -> None:
        super().__init__("tracking token expired")
        self.tracked = tracked


def is_trackable(url: str) -> bool:
    """An absolute http(s) URL with a host, no control characters, and short enough."""
    if not _TRACKABLE.fullmatch(url):
        return False
    try:
        return len(url.encode()) <= MAX_URL_BYTES
    except UnicodeEncodeError:  # lone surrogates
        return False


class Tokens:
    def __init__(self, secret: str, *, lifetime: timedelta) -> None:
        if not secret:
            raise ValueError("the tracking secret must not be empty")
        if lifetime <= timedelta(0):
            raise ValueError("the token lifetime must be positive")
        self._secret = secret.encode()
        self._lifetime = lifetime
        self._keys: dict[bytes, hmac.HMAC] = {}

    def click(
        self, workspace_id: UUID, delivery_id: UUID, link: int, url: str, at: datetime
    ) -> str:
        if not 0 <= link <= MAX_LINK:
            raise ValueError(f"link index out of range: {link}")
        if not is_trackable(url):
            raise ValueError("only absolute http(s) URLs can be tracked")
        deflated, stored = _pack_url(url.encode())
        code = (_CLICK | _DEFLATED) if deflated else _CLICK
        return self._sign(
            code, workspace_id=workspace_id, delivery_id=delivery_id, link=link, at=at, url=stored
        )

    def open(self, workspace_id: UUID, delivery_id: UUID, at: datetime) -> str:
        return self._sign(
            _OPEN, workspace_id=workspace_id, delivery_id=delivery_id, link=0, at=at, url=b""
        )

    def read(self, token: str, kind: Kind, now: datetime) -> Tracked:
        """The token's contents; ExpiredTokenError when authentic but too old, else TokenError."""
        _seconds(now)  # rejects a naive clock before anything else
        raw = _decode(token)
        if len(raw) < _HEADER.size + _MAC_BYTES:
            raise TokenError("tracking token too short")
        version, code, workspace, delivery, link, issued = _HEADER.unpack_from(raw)
        if version != VERSION:
            raise TokenError("unknown tracking token version")
        if code & ~_DEFLATED != (_OPEN if kind is Kind.OPEN else _CLICK):
            raise TokenError("tracking token of the wrong kind")
        signed, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(self._mac(workspace, signed), mac):
            raise TokenError("tracking token signature mismatch")
        tracked = Tracked(
            kind=kind,
            workspace_id=UUID(bytes=workspace),
            delivery_id=UUID(bytes=delivery),
            link=link,
            url=_read_url(kind, code, link, signed[_HEADER.size :]),
            issued=datetime.fromtimestamp(issued, UTC),
        )
        if now - tracked.issued > self._lifetime:
            raise ExpiredTokenError(tracked)
        return tracked

    def _sign(
        self,
        code: int,
        *,
        workspace_id: UUID,
        delivery_id: UUID,
        link: int,
        at: datetime,
        url: bytes,
    ) -> str:
        workspace = workspace_id.bytes
        payload = (
            _HEADER.pack(VERSION, code, workspace, delivery_id.bytes, link, _seconds(at)) + url
        )
        token = payload + self._mac(workspace, payload)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

    def _mac(self, workspace: bytes, payload: bytes) -> bytes:
        mac = self._key(workspace).copy()
        mac.update(payload)
        return mac.digest()[:_MAC_BYTES]

    def _key(self, workspace: bytes) -> hmac.HMAC:
        """The workspace's keyed HMAC, copied per use: cheaper than keying it each time."""
        key = self._keys.get(workspace)
        if key is None:
            derived = hmac.digest(self._secret, b"tracking:" + workspace, "sha256")
            key = hmac.new(derived, digestmod="sha256")
            if len(self._keys) >= _KEY_CACHE_SIZE:
                # Clearing is safe under threads and deriving again is cheap.
                self._keys.clear()
            self._keys[workspace] = key
        return key


def _seconds(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("tracking times must be timezone-aware")
    seconds = int(at.timestamp())
    if not 0 <= seconds <= _MAX_SECONDS:
        raise ValueError("tracking time out of range")
    return seconds


def _pack_url(url: bytes) -> tuple[bool, bytes]:
    """The URL as stored, and whether it is deflated (only when that is shorter)."""
    if len(url) < _DEFLATE_FROM:
        return False, url
    packer = zlib.compressobj(
        6, zlib.DEFLATED, _WINDOW_BITS, 1, zlib.Z_DEFAULT_STRATEGY, _URL_WORDS
    )
    packed = packer.compress(url) + packer.flush()
    return (True, packed) if len(packed) < len(url) else (False, url)


def _unpack_url(packed: bytes) -> bytes:
    unpacker = zlib.decompressobj(_WINDOW_BITS, zdict=_URL_WORDS)
    try:
        # The cap stops a deflate bomb even from a holder of the secret.
        url = unpacker.decompress(packed, MAX_URL_BYTES + 1)
    except zlib.error:
        raise TokenError("tracking token URL does not inflate") from None
    if len(url) > MAX_URL_BYTES or not unpacker.eof or unpacker.unused_data:
        raise TokenError("tracking token URL does not inflate")
    return url


def _read_url(kind: Kind, code: int, link: int, stored: bytes) -> str | None:
    if kind is Kind.OPEN:
        if stored or link or code & _DEFLATED:
            raise TokenError("open token with click fields")
        return None
    raw = _unpack_url(stored) if code & _DEFLATED else stored
    try:
        url = raw.decode()
    except UnicodeDecodeError:
        raise TokenError("tracking token URL is not UTF-8") from None
    if not is_trackable(url):
        raise TokenError("tracking token URL is not http(s)")
    return url


def _decode(token: str) -> bytes:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("tracking token too long")
    if not _ALPHABET.fullmatch(token) or len(token) % 4 == 1:
        raise TokenError("tracking token is not URL-safe base64")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("tracking token is not URL-safe base64") from None
    # Unused trailing bits would let several strings carry the same bytes.
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != token.encode("ascii"):
        raise TokenError("tracking token is not canonical base64")
    return raw
