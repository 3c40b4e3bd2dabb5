"""API tokens and OAuth clients as GraphQL nodes."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry
from strawberry import relay
from strawberry.types import Info

from domain import credentials
from domain.ids import parse_uuid


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
        uow = await info.context.require(credentials.ADMIN)
        ids = [parse_uuid(i) for i in node_ids]

        async def load(keys: list[UUID]) -> list[credentials.ApiToken | None]:
            found = await credentials.get_api_tokens(uow, keys)
            return [found.get(k) for k in keys]

        loader = info.context.loader("api_token", load)
        results: list[Any] = [await loader.load(i) if i else None for i in ids]
        return [cls.from_domain(t) if t else None for t in results]


@strawberry.type(name="OAuthClient")
class OAuthClientNode(relay.Node):
    id: relay.NodeID[str]
    client_id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_domain(cls, client: credentials.OAuthClient) -> "OAuthClientNode":
        return cls(
            id=str(client.id),
            client_id=client.client_id,
            name=client.name,
            scopes=sorted(client.scopes),
            created_at=client.created_at,
            revoked_at=client.revoked_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["OAuthClientNode | None"]:
        # Clients are listed nowhere yet; resolving one by id is not offered.
        await info.context.require(credentials.ADMIN)
        return [None for _ in node_ids]
