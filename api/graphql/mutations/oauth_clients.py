"""createOAuthClient and revokeOAuthClient."""

from strawberry import relay
from strawberry.types import Info

from api.graphql.ids import local_id
from api.graphql.types.input_error import InputError
from api.graphql.types.oauth_client import CreateOAuthClientInput, OAuthClientNode
from api.graphql.types.payloads import CreateOAuthClientPayload, RevokeOAuthClientPayload
from consent import audit
from consent import credentials as audited_credentials
from domain.credentials import ADMIN
from domain.errors import DomainError


async def create_oauth_client(
    info: Info,
    input: CreateOAuthClientInput,  # noqa: A002 - GraphQL's name
) -> CreateOAuthClientPayload:
    uow = await info.context.require(ADMIN)
    actor = audit.Actor.of(await info.context.principal())
    try:
        client, secret = await audited_credentials.create_oauth_client(
            uow, actor, name=input.name, scopes=input.scopes
        )
    except DomainError as error:
        return CreateOAuthClientPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return CreateOAuthClientPayload(
        client=OAuthClientNode.from_domain(client), client_secret=secret
    )


async def revoke_oauth_client(info: Info, id: relay.GlobalID) -> RevokeOAuthClientPayload:  # noqa: A002
    uow = await info.context.require(ADMIN)
    actor = audit.Actor.of(await info.context.principal())
    try:
        client = await audited_credentials.revoke_oauth_client(
            uow, actor, local_id(id, "OAuthClient")
        )
    except DomainError as error:
        return RevokeOAuthClientPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return RevokeOAuthClientPayload(client=OAuthClientNode.from_domain(client))
