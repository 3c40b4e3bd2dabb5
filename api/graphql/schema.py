"""The GraphQL schema."""

import strawberry
from strawberry import relay
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from api.graphql.hardening import extensions
from api.graphql.mutations.api_tokens import create_api_token, revoke_api_token
from api.graphql.mutations.oauth_clients import create_oauth_client, revoke_oauth_client
from api.graphql.permissions import requires
from api.graphql.scalars import SCALARS
from api.graphql.types.api_token import ApiTokenNode, OAuthClientNode
from api.graphql.types.workspace import WorkspaceNode
from api.settings import Settings
from domain import workspaces


@strawberry.type
class Query:
    node: relay.Node | None = relay.node(extensions=requires())

    @strawberry.field(extensions=requires(), description="The caller's workspace.")
    async def workspace(self, info: Info) -> WorkspaceNode:
        uow = await info.context.uow()
        return WorkspaceNode.from_domain(await workspaces.current_workspace(uow))


@strawberry.type
class Mutation:
    create_api_token = strawberry.mutation(resolver=create_api_token)
    revoke_api_token = strawberry.mutation(resolver=revoke_api_token)
    create_oauth_client = strawberry.mutation(resolver=create_oauth_client, name="createOAuthClient")
    revoke_oauth_client = strawberry.mutation(resolver=revoke_oauth_client, name="revokeOAuthClient")


def build_schema(settings: Settings) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[WorkspaceNode, ApiTokenNode, OAuthClientNode],
        extensions=extensions(settings),
        config=StrawberryConfig(
            disable_field_suggestions=settings.production,
            relay_max_results=100,
            scalar_map=SCALARS,
        ),
    )


def sdl(settings: Settings | None = None) -> str:
    return build_schema(settings or Settings()).as_str() + "\n"
