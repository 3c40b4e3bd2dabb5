"""The caller's workspace."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.permissions import requires
from api.graphql.types.api_token import ApiTokenNode
from domain import credentials, workspaces
from domain.ids import parse_uuid


@strawberry.type(name="Workspace")
class WorkspaceNode(relay.Node):
    id: relay.NodeID[str]
    name: str
    created_at: datetime

    @classmethod
    def from_domain(cls, ws: workspaces.Workspace) -> "WorkspaceNode":
        return cls(id=str(ws.id), name=ws.name, created_at=ws.created_at)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["WorkspaceNode | None"]:
        uow = await info.context.require()

        async def load(keys: list[UUID]) -> list[workspaces.Workspace | None]:
            found = await workspaces.get_workspaces(uow, keys)
            return [found.get(k) for k in keys]

        loader = info.context.loader("workspace", load)
        results: list[Any] = [
            await loader.load(key) if (key := parse_uuid(i)) else None for i in node_ids
        ]
        return [cls.from_domain(w) if w else None for w in results]

    @strawberry.field(extensions=requires(credentials.ADMIN))
    async def api_tokens(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[ApiTokenNode]:
        limit = connection.page_size(first)
        cursor = connection.decode_cursor(after)
        uow = await info.context.uow()
        rows = await credentials.list_api_tokens(uow, after=cursor, limit=limit + 1)
        return connection.build(
            rows, limit, key=lambda t: t.id, to_node=ApiTokenNode.from_domain, after=cursor
        )
