"""Events in GraphQL, and the cursor of a profile's page of events."""

import base64
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.nodes import load_nodes
from api.graphql.scalars import JSON
from cdp import queries
from domain.credentials import PROFILES_READ
from domain.errors import ValidationError


@strawberry.type(name="Event")
class EventNode(relay.Node):
    id: relay.NodeID[str]
    type: str
    name: str | None
    timestamp: datetime
    received_at: datetime
    message_id: str
    properties: JSON
    context: JSON

    @classmethod
    def from_row(cls, row: queries.EventRow) -> "EventNode":
        return cls(
            id=str(row.id),
            type=row.type,
            name=row.name,
            timestamp=row.timestamp,
            received_at=row.received_at,
            message_id=row.message_id,
            properties=JSON(row.properties),
            context=JSON(row.context),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["EventNode | None"]:
        return await load_nodes(
            info,
            loader_name="event",
            node_ids=node_ids,
            scope=PROFILES_READ,
            fetch=queries.events_by_id,
            to_node=cls.from_row,
        )


def encode_event_cursor(row: queries.EventRow) -> str:
    return base64.urlsafe_b64encode(f"event:{row.timestamp.isoformat()}|{row.id}".encode()).decode()


def decode_event_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, _, rest = raw.partition(":")
        stamp, _, key = rest.partition("|")
        parsed = (datetime.fromisoformat(stamp).astimezone(UTC), UUID(key))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("malformed cursor", field="after") from exc
    if prefix != "event":
        raise ValidationError("malformed cursor", field="after")
    return parsed


def event_page(first: int | None, after: str | None, name: str | None) -> queries.EventPage:
    """The page that `events(first:, after:, name:)` reads: one event more than it shows,
    to tell whether there is a next page."""
    return queries.EventPage(connection.page_size(first) + 1, name, decode_event_cursor(after))
