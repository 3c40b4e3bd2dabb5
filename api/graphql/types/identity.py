"""Identifiers and the identity conflicts the merge rules refused, in GraphQL."""

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from cdp import queries
from domain.credentials import PROFILES_READ
from domain.ids import parse_uuid


@strawberry.type
class Identity:
    kind: str
    value: str


@strawberry.input
class IdentifierInput:
    kind: str
    value: str


@strawberry.type(name="IdentityConflict")
class IdentityConflictNode(relay.Node):
    id: relay.NodeID[str]
    kind: str
    value: str
    held_by: relay.GlobalID = strawberry.field(description="The profile that keeps the identifier.")
    claimed_by: relay.GlobalID = strawberry.field(description="The profile that was refused it.")
    rule: str
    trigger: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: queries.ConflictRow) -> "IdentityConflictNode":
        return cls(
            id=str(row.id),
            kind=row.kind,
            value=row.value,
            held_by=relay.GlobalID("Profile", str(row.held_by)),
            claimed_by=relay.GlobalID("Profile", str(row.claimed_by)),
            rule=row.rule,
            trigger=row.trigger,
            created_at=row.created_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["IdentityConflictNode | None"]:
        uow = await info.context.require(PROFILES_READ)
        keys = [parse_uuid(i) for i in node_ids]
        rows = await queries.list_conflicts_by_id(uow, [k for k in keys if k])
        return [cls.from_row(rows[k]) if k in rows else None for k in keys]
