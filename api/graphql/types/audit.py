"""Entries of the audit log, in GraphQL."""

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql.nodes import load_nodes
from api.graphql.scalars import JSON
from consent import audit
from domain.credentials import CONSENT_READ


@strawberry.type(name="AuditEntry")
class AuditEntryNode(relay.Node):
    id: relay.NodeID[str]
    at: datetime
    actor_kind: str
    actor_id: str
    action: str
    object_type: str
    object_id: str
    request_id: str | None
    details: JSON

    @classmethod
    def from_domain(cls, entry: audit.AuditEntry) -> "AuditEntryNode":
        return cls(
            id=str(entry.id),
            at=entry.at,
            actor_kind=entry.actor_kind,
            actor_id=entry.actor_id,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            request_id=entry.request_id,
            details=JSON(entry.details),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["AuditEntryNode | None"]:
        return await load_nodes(
            info,
            loader_name="audit_entry",
            node_ids=node_ids,
            scope=CONSENT_READ,
            fetch=audit.entries_by_id,
            to_node=cls.from_domain,
        )
