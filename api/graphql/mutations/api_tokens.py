"""createApiToken and revokeApiToken."""

from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql import auditing
from api.graphql.errors import InputError
from api.graphql.ids import local_id
from api.graphql.types.api_token import ApiTokenNode
from domain import credentials
from domain.errors import DomainError


@strawberry.input
class CreateApiTokenInput:
    name: str
    scopes: list[str]
    expires_at: datetime | None = None


@strawberry.type
class CreateApiTokenPayload:
    api_token: ApiTokenNode | None = None
    token: str | None = strawberry.field(
        default=None, description="The secret. It is shown once and never stored."
    )
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class RevokeApiTokenPayload:
    api_token: ApiTokenNode | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


async def create_api_token(info: Info, input: CreateApiTokenInput) -> CreateApiTokenPayload:  # noqa: A002 - GraphQL's name
    uow = await info.context.require(credentials.ADMIN)
    try:
        record, token = await credentials.issue_api_token(
            uow, name=input.name, scopes=input.scopes, expires_at=input.expires_at
        )
    except DomainError as error:
        return CreateApiTokenPayload(errors=[InputError.from_domain(error)])
    await auditing.record(
        info,
        "api_token.created",
        object_type="api_token",
        object_id=record.id,
        details={"scopes": sorted(record.scopes)},
    )
    await uow.commit()
    return CreateApiTokenPayload(api_token=ApiTokenNode.from_domain(record), token=token)


async def revoke_api_token(info: Info, id: relay.GlobalID) -> RevokeApiTokenPayload:  # noqa: A002
    uow = await info.context.require(credentials.ADMIN)
    try:
        record = await credentials.revoke_api_token(uow, local_id(id, "ApiToken"))
    except DomainError as error:
        return RevokeApiTokenPayload(errors=[InputError.from_domain(error)])
    await auditing.record(info, "api_token.revoked", object_type="api_token", object_id=record.id)
    await uow.commit()
    return RevokeApiTokenPayload(api_token=ApiTokenNode.from_domain(record))
