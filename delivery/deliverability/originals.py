"""What a report tells about the message it is about: its Message-ID, return paths, senders.

The return paths are every envelope-sender candidate the report carries, in
the order found: the report's own field for it (ARF Original-Mail-From,
Postfix's X-Postfix-Sender), then the returned message's Return-Path and the
like, then the `envelope-from` its Received fields name. Our VERP address is
one of them when the returned message is ours.
"""

import re
from dataclasses import dataclass

from delivery.deliverability import addresses
from delivery.deliverability.message_parts import HEADER_TYPES, Headers, Part, embedded_headers

_RETURN_PATH_FIELDS = (
    "return-path",
    "x-envelope-from",
    "envelope-from",
    "x-original-return-path",
    "x-original-mail-from",
    "errors-to",
)
_ENVELOPE_FROM = re.compile(r"envelope-from\s*<?([^\s<>;()]+@[^\s<>;()]+)", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True, slots=True)
class Original:
    message_id: str | None = None
    return_paths: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()


def message_id(value: str | None) -> str | None:
    """A Message-ID in its `<id>` form."""
    if not value:
        return None
    found = _MESSAGE_ID.search(value)
    if found is not None:
        return found.group(0)
    bare = value.strip().split()
    return f"<{bare[0]}>" if bare else None


def attached(found: list[Part]) -> Headers | None:
    """The headers of the first attached message (or text/rfc822-headers part) among `found`."""
    for part in found:
        if part.type in HEADER_TYPES:
            return embedded_headers(part)
    return None


def return_paths(values: list[str]) -> list[str]:
    found: list[str] = []
    for value in values:
        address = addresses.as_written(value)
        if address is not None and address not in found:
            found.append(address)
    return found


def of(headers: Headers | None, *report_senders: str) -> Original:
    """The original from its headers (None when the report does not carry them)."""
    paths = return_paths(list(report_senders))
    if headers is None:
        return Original(return_paths=tuple(paths))
    candidates = [value for name in _RETURN_PATH_FIELDS for value in headers.all(name)]
    candidates += [
        found.group(1)
        for received in headers.all("received")
        for found in _ENVELOPE_FROM.finditer(received)
    ]
    paths += [path for path in return_paths(candidates) if path not in paths]
    senders = list(dict.fromkeys(addresses.all_in(headers.all("from") + headers.all("sender"))))
    return Original(
        message_id=message_id(headers.get("message-id")),
        return_paths=tuple(paths),
        senders=tuple(senders + [p.lower() for p in paths if p.lower() not in senders]),
    )
