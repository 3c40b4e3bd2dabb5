"""Relay connections with keyset cursors, capped at 100 per page."""

import base64
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from strawberry import relay

from domain.errors import ValidationError
from domain.ids import parse_uuid

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

N = TypeVar("N", bound=relay.Node)
R = TypeVar("R")


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0 or first > MAX_PAGE_SIZE:
        raise ValidationError(f"first must be between 0 and {MAX_PAGE_SIZE}", field="first")
    return first


def encode_cursor(key: UUID) -> str:
    return base64.urlsafe_b64encode(f"cursor:{key}".encode()).decode()


def decode_cursor(cursor: str | None) -> UUID | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("malformed cursor", field="after") from exc
    prefix, _, value = raw.partition(":")
    key = parse_uuid(value) if prefix == "cursor" else None
    if key is None:
        raise ValidationError("malformed cursor", field="after")
    return key


def build(
    rows: Sequence[R],
    limit: int,
    *,
    key: Callable[[R], UUID] | None = None,
    to_node: Callable[[R], N],
    after: object | None,
    cursor: Callable[[R], str] | None = None,
) -> relay.Connection[N]:
    """Build a connection from `limit + 1` rows fetched after the cursor.

    Rows are keyed by `key` (a UUID, encoded as the standard cursor) or by
    `cursor` (any cursor string, for orderings other than by id).
    """
    page = list(rows[:limit])
    make_cursor = cursor or (lambda row: encode_cursor(key(row)))  # type: ignore[misc]
    edges: list[relay.Edge[Any]] = [
        relay.Edge(node=to_node(row), cursor=make_cursor(row)) for row in page
    ]
    return relay.Connection(
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=len(rows) > limit,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
