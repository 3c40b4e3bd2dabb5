"""Request bodies: read under a hard size cap, and parsed as JSON exactly as written."""

import json
import re

import orjson
from starlette.requests import Request


class BodyTooLargeError(Exception):
    pass


class MalformedBodyError(ValueError):
    """A body that is not JSON; `reason` says why, in words fit for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# orjson reads an integer of 19 digits or more that does not fit in 64 bits
# as a float; a body with such a run of digits is read by the standard library.
# The bytes are searched with every digit mapped to 0: a plain substring
# search, much cheaper than a regular expression over a large body
# (bench/README.md).
_LONG_RUN = 19
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_ZEROS = b"0" * _LONG_RUN
_LONG_DIGITS_TEXT = re.compile(rf"\d{{{_LONG_RUN}}}")


def _has_long_digits(data: bytes | str) -> bool:
    if isinstance(data, bytes):
        return _ZEROS in data.translate(_DIGITS_AS_ZERO)
    return _LONG_DIGITS_TEXT.search(data) is not None


async def read_capped(request: Request, limit: int) -> bytes:
    """The raw body, refused (BodyTooLargeError) as soon as it passes `limit` bytes.

    A declared length over the limit is refused before anything is read, and
    a body that lies about its length is cut off as it streams, so a large
    body never sits in memory.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise BodyTooLargeError
    return bytes(received)


def parse_json(data: bytes | str) -> object:
    """The JSON value of `data`, every number and string as the client wrote it.

    orjson reads most bodies. It refuses NaN, Infinity and an escaped lone
    surrogate, and reads an integer beyond 64 bits as a float; such a body is
    read by the standard library instead, which keeps each value as written,
    so that the input checks can refuse that one value by name rather than
    the whole body be refused or the value quietly changed. A body that is not
    UTF-8, not JSON, or nested deeper than the parser goes raises
    MalformedBodyError.
    """
    if not _has_long_digits(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    try:
        text = data.decode() if isinstance(data, bytes) else data
    except UnicodeDecodeError as error:
        raise MalformedBodyError(f"the body is not UTF-8 (byte {error.start})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise MalformedBodyError("the JSON is nested too deeply") from None
    except json.JSONDecodeError as error:
        raise MalformedBodyError(f"the body is not JSON: {error}") from None
    except ValueError:  # an integer of thousands of digits, which Python will not convert
        raise MalformedBodyError("the body holds a number too long to read") from None
