"""Identifiers.

Ids are UUIDv7 (RFC 9562): time-ordered, so b-tree inserts stay local and
keyset pagination by id follows creation order.
"""

import base64
import binascii
import os
import time
import uuid
from collections.abc import Callable

_LOW_62 = (1 << 62) - 1


def _head() -> int:
    """Timestamp, version and variant bits of a UUIDv7 made now."""
    unix_ms = time.time_ns() // 1_000_000
    return (unix_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | 0b10 << 62


def _v7(head: int, rand: int) -> int:
    return head | ((rand >> 62) & 0xFFF) << 64 | (rand & _LOW_62)


def new_id() -> uuid.UUID:
    return uuid.UUID(int=_v7(_head(), int.from_bytes(os.urandom(10), "big")))


def _v7_batch(count: int) -> list[int]:
    # One clock read and one call for randomness serve the whole batch.
    head = _head()
    pool = os.urandom(10 * count)
    return [_v7(head, int.from_bytes(pool[k : k + 10], "big")) for k in range(0, 10 * count, 10)]


def new_ids_text(count: int) -> list[str]:
    """`count` UUIDv7s as 32 hex digits (a form PostgreSQL reads), for bulk rows.

    No UUID object is built: a batch of events needs only their text.
    """
    return [f"{value:032x}" for value in _v7_batch(count)]


def id_supply(batch: int) -> Callable[[], uuid.UUID]:
    """A maker of UUIDv7s that draws the clock and randomness once per `batch` ids.

    For a bulk path that makes an id per item and cannot say in advance how many.
    """
    pending: list[int] = []

    def make() -> uuid.UUID:
        if not pending:
            pending.extend(_v7_batch(max(batch, 1)))
        return uuid.UUID(int=pending.pop())

    return make


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def global_id_of(value: str, type_name: str) -> uuid.UUID | None:
    """A UUID from a Relay global id of `type_name` ("Segment:<uuid>", base64), or from the
    bare UUID; None for anything else."""
    found = parse_uuid(value)
    if found is not None:
        return found
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    kind, _, raw = decoded.partition(":")
    return parse_uuid(raw) if kind == type_name else None
