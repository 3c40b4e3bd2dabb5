"""createOAuthClient and revokeOAuthClient."""

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql import auditing
from api.graphql.errors import InputError
from api.graphql.ids import local_id
from api.graphql.types.api_token import OAuthClientNode
from domain import credentials
from domain.errors import DomainError


@strawberry.input
class CreateOAuthClientInput:
    name: str
    scopes: list[str]


@strawberry.type
class CreateOAuthClientPayload:
    client: OAuthClientNode | None = None
    client_secret: str | None = strawberry.field(
        default=None, description="The secret. It is shown once and never stored."
    )
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class RevokeOAuthClientPayload:
    client: OAuthClientNode | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


async def create_oauth_client(
    info: Info,
    input: CreateOAuthClientInput,  # noqa: A002 - GraphQL's name
) -> CreateOAuthClientPayload:
    uow = await info.context.require(credentials.ADMIN)
    try:
        client, secret = await credentials.create_oauth_client(
            uow, name=input.name, scopes=input.scopes
        )
    except DomainError as error:
        return CreateOAuthClientPayload(errors=[InputError.from_domain(error)])
    await auditing.record(
        info,
        "oauth_client.created",
        object_type="oauth_client",
        object_id=client.id,
        details={"scopes": sorted(client.scopes)},
    )
    await uow.commit()
    return CreateOAuthClientPayload(
        client=OAuthClientNode.from_domain(client), client_secret=secret
    )


async def revoke_oauth_client(info: Info, id: relay.GlobalID) -> RevokeOAuthClientPayload:  # noqa: A002
    uow = await info.context.require(credentials.ADMIN)
    try:
        client = await credentials.revoke_oauth_client(uow, local_id(id, "OAuthClient"))
    except DomainError as error:
        return RevokeOAuthClientPayload(errors=[InputError.from_domain(error)])
    await auditing.record(
        info, "oauth_client.revoked", object_type="oauth_client", object_id=client.id
    )
    await uow.commit()
    return RevokeOAuthClientPayload(client=OAuthClientNode.from_domain(client))
