"""API tokens in GraphQL."""

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql.nodes import load_nodes
from domain import credentials


@strawberry.type(name="ApiToken")
class ApiTokenNode(relay.Node):
    id: relay.NodeID[str]
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_domain(cls, token: credentials.ApiToken) -> "ApiTokenNode":
        return cls(
            id=str(token.id),
            name=token.name,
            scopes=sorted(token.scopes),
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["ApiTokenNode | None"]:
        return await load_nodes(
            info,
            loader_name="api_token",
            node_ids=node_ids,
            scope=credentials.ADMIN,
            fetch=credentials.get_api_tokens,
            to_node=cls.from_domain,
        )


@strawberry.input
class CreateApiTokenInput:
    name: str
    scopes: list[str]
    expires_at: datetime | None = None
