"""The caller's workspace."""

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.nodes import load_nodes
from api.graphql.permissions import requires
from api.graphql.types.api_token import ApiTokenNode
from api.graphql.types.merge_rule import MergeRuleType
from api.graphql.types.oauth_client import OAuthClientNode
from cdp import merge_rules, retention
from domain import credentials, workspaces


@strawberry.type(name="Workspace")
class WorkspaceNode(relay.Node):
    id: relay.NodeID[str]
    name: str
    created_at: datetime
    postal_address: str | None = strawberry.field(
        default=None, description="The sender's postal address, shown in every email's footer."
    )

    @classmethod
    def from_domain(cls, ws: workspaces.Workspace) -> "WorkspaceNode":
        return cls(
            id=str(ws.id), name=ws.name, created_at=ws.created_at, postal_address=ws.postal_address
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["WorkspaceNode | None"]:
        return await load_nodes(
            info,
            loader_name="workspace",
            node_ids=node_ids,
            scope=None,
            fetch=workspaces.get_workspaces,
            to_node=cls.from_domain,
        )

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

    @strawberry.field(
        extensions=requires(),
        description="Events older than this many days are deleted; null keeps them.",
    )
    async def event_retention_days(self, info: Info) -> int | None:
        return await retention.workspace_retention(await info.context.uow())

    @strawberry.field(
        extensions=requires(credentials.PROFILES_READ),
        description="How identifiers merge in this workspace, strongest kind first.",
    )
    async def merge_rules(self, info: Info) -> list[MergeRuleType]:
        uow = await info.context.uow()
        return [MergeRuleType.from_domain(r) for r in await merge_rules.effective_rules(uow)]

    @strawberry.field(extensions=requires(credentials.ADMIN))
    async def oauth_clients(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[OAuthClientNode]:
        limit = connection.page_size(first)
        cursor = connection.decode_cursor(after)
        uow = await info.context.uow()
        rows = await credentials.list_oauth_clients(uow, after=cursor, limit=limit + 1)
        return connection.build(
            rows, limit, key=lambda c: c.id, to_node=OAuthClientNode.from_domain, after=cursor
        )
