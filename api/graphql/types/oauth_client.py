"""OAuth clients (client credentials) in GraphQL."""

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql.nodes import load_nodes
from domain import credentials


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
        return await load_nodes(
            info,
            loader_name="oauth_client",
            node_ids=node_ids,
            scope=credentials.ADMIN,
            fetch=credentials.get_oauth_clients,
            to_node=cls.from_domain,
        )


@strawberry.input
class CreateOAuthClientInput:
    name: str
    scopes: list[str]
