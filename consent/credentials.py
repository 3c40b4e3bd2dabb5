"""API tokens and OAuth clients issued and revoked by a caller, each change audited.

`domain.credentials` makes the change; the audit log lives in this context,
above the domain, so the use case that writes both lives here.
"""

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from consent import audit
from domain import credentials
from domain.credentials import ApiToken, OAuthClient
from domain.uow import UnitOfWork


async def issue_api_token(
    uow: UnitOfWork,
    actor: audit.Actor,
    *,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token and its secret, which is shown once and never stored."""
    record, token = await credentials.issue_api_token(
        uow, name=name, scopes=scopes, expires_at=expires_at
    )
    await audit.record(
        uow,
        actor,
        "api_token.created",
        object_type="api_token",
        object_id=record.id,
        details={"scopes": sorted(record.scopes)},
    )
    return record, token


async def revoke_api_token(uow: UnitOfWork, actor: audit.Actor, token_id: UUID) -> ApiToken:
    record = await credentials.revoke_api_token(uow, token_id)
    await audit.record(
        uow, actor, "api_token.revoked", object_type="api_token", object_id=record.id
    )
    return record


async def create_oauth_client(
    uow: UnitOfWork, actor: audit.Actor, *, name: str, scopes: Iterable[str]
) -> tuple[OAuthClient, str]:
    """A new client and its secret, which is shown once and never stored."""
    client, secret = await credentials.create_oauth_client(uow, name=name, scopes=scopes)
    await audit.record(
        uow,
        actor,
        "oauth_client.created",
        object_type="oauth_client",
        object_id=client.id,
        details={"scopes": sorted(client.scopes)},
    )
    return client, secret


async def revoke_oauth_client(
    uow: UnitOfWork, actor: audit.Actor, client_row_id: UUID
) -> OAuthClient:
    client = await credentials.revoke_oauth_client(uow, client_row_id)
    await audit.record(
        uow, actor, "oauth_client.revoked", object_type="oauth_client", object_id=client.id
    )
    return client
