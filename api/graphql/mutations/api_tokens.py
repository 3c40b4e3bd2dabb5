"""createApiToken and revokeApiToken."""

from strawberry import relay
from strawberry.types import Info

from api.graphql.ids import local_id
from api.graphql.types.api_token import ApiTokenNode, CreateApiTokenInput
from api.graphql.types.input_error import InputError
from api.graphql.types.payloads import CreateApiTokenPayload, RevokeApiTokenPayload
from consent import audit
from consent import credentials as audited_credentials
from domain.credentials import ADMIN
from domain.errors import DomainError


async def create_api_token(info: Info, input: CreateApiTokenInput) -> CreateApiTokenPayload:  # noqa: A002 - GraphQL's name
    uow = await info.context.require(ADMIN)
    actor = audit.Actor.of(await info.context.principal())
    try:
        record, token = await audited_credentials.issue_api_token(
            uow, actor, name=input.name, scopes=input.scopes, expires_at=input.expires_at
        )
    except DomainError as error:
        return CreateApiTokenPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return CreateApiTokenPayload(api_token=ApiTokenNode.from_domain(record), token=token)


async def revoke_api_token(info: Info, id: relay.GlobalID) -> RevokeApiTokenPayload:  # noqa: A002
    uow = await info.context.require(ADMIN)
    actor = audit.Actor.of(await info.context.principal())
    try:
        record = await audited_credentials.revoke_api_token(uow, actor, local_id(id, "ApiToken"))
    except DomainError as error:
        return RevokeApiTokenPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return RevokeApiTokenPayload(api_token=ApiTokenNode.from_domain(record))
