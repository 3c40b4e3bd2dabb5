"""Credentials: API tokens, write keys and OAuth clients.

Secrets are random, so a SHA-256 digest is enough to store them: there is
nothing to brute-force. Each credential starts with its workspace id, which
lets authentication select the workspace first and then look the digest up
under row-level security, with no privileged bypass.

SQL here is SQLAlchemy Core, except the two checks that head the pipeline of
every authenticated request (`api_token_check`, `write_key_requirement`):
they are psycopg `Statement`s, the style of the hot paths, so that they
travel in the same round trip as BEGIN and the request's own statements.
"""

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ARRAY,
    Column,
    DateTime,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from domain.db import metadata
from domain.errors import AuthenticationError, NotFoundError, ValidationError
from domain.ids import new_id
from domain.tenancy import workspace_id_column
from domain.uow import Statement, UnitOfWork

PROFILES_READ = "profiles:read"
PROFILES_WRITE = "profiles:write"
CONSENT_READ = "consent:read"
CONSENT_WRITE = "consent:write"
DSR_MANAGE = "dsr:manage"
SEGMENTS_READ = "segments:read"
SEGMENTS_WRITE = "segments:write"
# Templates, campaigns, journeys and sending domains.
MESSAGES_READ = "messages:read"
MESSAGES_WRITE = "messages:write"
ADMIN = "admin"
ALL_SCOPES = frozenset(
    {
        PROFILES_READ, PROFILES_WRITE, CONSENT_READ, CONSENT_WRITE, DSR_MANAGE, SEGMENTS_READ,
        SEGMENTS_WRITE, MESSAGES_READ, MESSAGES_WRITE, ADMIN,
    }
)  # fmt: skip

API_TOKEN_PREFIX = "cdp_at"  # noqa: S105 - a public prefix, not a secret
WRITE_KEY_PREFIX = "cdp_wk"
CLIENT_ID_PREFIX = "cdp_oc"

api_tokens = Table(
    "api_tokens",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("token_hash", LargeBinary, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("workspace_id", "id"),
    UniqueConstraint("workspace_id", "token_hash"),
)

write_keys = Table(
    "write_keys",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("key_hash", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("workspace_id", "id"),
    UniqueConstraint("workspace_id", "key_hash"),
)

oauth_clients = Table(
    "oauth_clients",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("client_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("secret_hash", LargeBinary, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("workspace_id", "id"),
    UniqueConstraint("workspace_id", "client_id"),
)


@dataclass(frozen=True)
class Principal:
    workspace_id: UUID
    credential_id: UUID
    kind: str
    scopes: frozenset[str]

    def has_scope(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes


@dataclass(frozen=True)
class ApiToken:
    id: UUID
    name: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class OAuthClient:
    id: UUID
    client_id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _mint(prefix: str, workspace_id: UUID, nbytes: int = 32) -> str:
    return f"{prefix}_{workspace_id.hex}_{secrets.token_urlsafe(nbytes)}"


def workspace_of(credential: str, prefix: str) -> UUID | None:
    """The workspace a credential claims to belong to, or None if malformed."""
    head, sep, rest = credential.partition(f"{prefix}_")
    if head or not sep:
        return None
    ws_hex, sep, secret = rest.partition("_")
    if not sep or len(ws_hex) != 32 or not secret:  # noqa: PLR2004 - a UUID in hex
        return None
    try:
        return UUID(hex=ws_hex)
    except ValueError:
        return None


def validate_scopes(scopes: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(scopes)
    unknown = sorted(chosen - ALL_SCOPES)
    if unknown:
        raise ValidationError(f"unknown scope(s): {', '.join(unknown)}", field="scopes")
    if not chosen:
        raise ValidationError("at least one scope is required", field="scopes")
    return chosen


def _name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 100:  # noqa: PLR2004
        raise ValidationError("name must be 1 to 100 characters", field="name")
    return cleaned


async def issue_api_token(
    uow: UnitOfWork,
    *,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    chosen = validate_scopes(scopes)
    now = uow.clock.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationError("expiry must be in the future", field="expiresAt")
    token = _mint(API_TOKEN_PREFIX, uow.workspace_id)
    record = ApiToken(new_id(), _name(name), chosen, now, expires_at, None)
    await uow.execute(
        insert(api_tokens).values(
            workspace_id=uow.workspace_id,
            id=record.id,
            name=record.name,
            token_hash=digest(token),
            scopes=sorted(chosen),
            created_at=now,
            expires_at=expires_at,
        )
    )
    return record, token


def _api_token(row: object) -> ApiToken:
    return ApiToken(
        row.id,  # type: ignore[attr-defined]
        row.name,  # type: ignore[attr-defined]
        frozenset(row.scopes),  # type: ignore[attr-defined]
        row.created_at,  # type: ignore[attr-defined]
        row.expires_at,  # type: ignore[attr-defined]
        row.revoked_at,  # type: ignore[attr-defined]
    )


def api_token_check(token: str, at: datetime) -> tuple[UUID, Statement]:
    """The workspace an API token names, and the statement that checks it at `at`.

    The statement fails with AuthenticationError for an unknown, revoked or
    expired token, so nothing queued behind it in a pipeline runs; otherwise
    its rows make the principal (`api_token_principal`). A token that is not
    even well formed raises AuthenticationError here.
    """
    workspace_id = workspace_of(token, API_TOKEN_PREFIX)
    if workspace_id is None:
        raise AuthenticationError("invalid token")
    return workspace_id, Statement(
        "SELECT token_id, token_scopes FROM cdp_api_token(%(ws)s, %(hash)s, %(at)s)",
        {"ws": workspace_id, "hash": digest(token), "at": at},
    )


def api_token_principal(workspace_id: UUID, rows: Sequence[Any]) -> Principal:
    """The principal from the rows of a successful `api_token_check` statement."""
    [row] = rows
    return Principal(workspace_id, row.token_id, "api_token", frozenset(row.token_scopes))


async def authenticate_api_token(uow: UnitOfWork, token: str) -> Principal:
    workspace_id, check = api_token_check(token, uow.clock.now())
    await uow.select_workspace(workspace_id)
    # Raw SQL: it runs before every API request, and so travels with BEGIN.
    [rows] = await uow.pipeline(check)
    return api_token_principal(workspace_id, rows)


async def get_api_tokens(uow: UnitOfWork, ids: list[UUID]) -> dict[UUID, ApiToken]:
    rows = await uow.execute(
        select(api_tokens).where(
            api_tokens.c.workspace_id == uow.workspace_id, api_tokens.c.id.in_(ids)
        )
    )
    return {row.id: _api_token(row) for row in rows}


async def list_api_tokens(uow: UnitOfWork, *, after: UUID | None, limit: int) -> list[ApiToken]:
    query = select(api_tokens).where(api_tokens.c.workspace_id == uow.workspace_id)
    if after is not None:
        query = query.where(api_tokens.c.id > after)
    rows = await uow.execute(query.order_by(api_tokens.c.id).limit(limit))
    return [_api_token(row) for row in rows]


async def revoke_api_token(uow: UnitOfWork, token_id: UUID) -> ApiToken:
    row = (
        await uow.execute(
            update(api_tokens)
            .where(api_tokens.c.workspace_id == uow.workspace_id, api_tokens.c.id == token_id)
            .values(revoked_at=func.coalesce(api_tokens.c.revoked_at, uow.clock.now()))
            .returning(*api_tokens.c)
        )
    ).first()
    if row is None:
        raise NotFoundError("API token not found", field="id")
    return _api_token(row)


async def issue_write_key(uow: UnitOfWork, *, name: str) -> str:
    key = _mint(WRITE_KEY_PREFIX, uow.workspace_id, 24)
    await uow.execute(
        insert(write_keys).values(
            workspace_id=uow.workspace_id,
            id=new_id(),
            name=_name(name),
            key_hash=digest(key),
            created_at=uow.clock.now(),
        )
    )
    return key


def write_key_requirement(workspace_id: UUID, key: str) -> Statement:
    """A statement that fails with AuthenticationError unless `key` is a live write key.

    For the head of a pipeline: when it fails, nothing queued behind it runs.
    """
    return Statement(
        "SELECT cdp_require_write_key(%(ws)s, %(hash)s)", {"ws": workspace_id, "hash": digest(key)}
    )


def write_key_workspace(key: str) -> UUID:
    """The workspace a write key names; AuthenticationError for anything that is not one."""
    workspace_id = workspace_of(key, WRITE_KEY_PREFIX)
    if workspace_id is None:
        raise AuthenticationError("invalid write key")
    return workspace_id


async def authenticate_write_key(uow: UnitOfWork, key: str) -> UUID:
    workspace_id = write_key_workspace(key)
    await uow.select_workspace(workspace_id)
    await uow.pipeline(write_key_requirement(workspace_id, key))
    return workspace_id


def _oauth_client(row: object) -> OAuthClient:
    return OAuthClient(
        row.id,  # type: ignore[attr-defined]
        row.client_id,  # type: ignore[attr-defined]
        row.name,  # type: ignore[attr-defined]
        frozenset(row.scopes),  # type: ignore[attr-defined]
        row.created_at,  # type: ignore[attr-defined]
        row.revoked_at,  # type: ignore[attr-defined]
    )


async def get_oauth_clients(uow: UnitOfWork, ids: list[UUID]) -> dict[UUID, OAuthClient]:
    rows = await uow.execute(
        select(oauth_clients).where(
            oauth_clients.c.workspace_id == uow.workspace_id, oauth_clients.c.id.in_(ids)
        )
    )
    return {row.id: _oauth_client(row) for row in rows}


async def list_oauth_clients(
    uow: UnitOfWork, *, after: UUID | None, limit: int
) -> list[OAuthClient]:
    query = select(oauth_clients).where(oauth_clients.c.workspace_id == uow.workspace_id)
    if after is not None:
        query = query.where(oauth_clients.c.id > after)
    rows = await uow.execute(query.order_by(oauth_clients.c.id).limit(limit))
    return [_oauth_client(row) for row in rows]


async def create_oauth_client(
    uow: UnitOfWork, *, name: str, scopes: Iterable[str]
) -> tuple[OAuthClient, str]:
    chosen = validate_scopes(scopes)
    client_id = _mint(CLIENT_ID_PREFIX, uow.workspace_id, 9)
    secret = secrets.token_urlsafe(32)
    client = OAuthClient(new_id(), client_id, _name(name), chosen, uow.clock.now(), None)
    await uow.execute(
        insert(oauth_clients).values(
            workspace_id=uow.workspace_id,
            id=client.id,
            client_id=client_id,
            name=client.name,
            secret_hash=digest(secret),
            scopes=sorted(chosen),
            created_at=client.created_at,
        )
    )
    return client, secret


async def authenticate_oauth_client(uow: UnitOfWork, client_id: str, secret: str) -> OAuthClient:
    workspace_id = workspace_of(client_id, CLIENT_ID_PREFIX)
    if workspace_id is None:
        raise AuthenticationError("invalid client")
    await uow.select_workspace(workspace_id)
    row = (
        await uow.execute(
            select(oauth_clients).where(
                oauth_clients.c.workspace_id == workspace_id,
                oauth_clients.c.client_id == client_id,
            )
        )
    ).first()
    if row is None or not secrets.compare_digest(row.secret_hash, digest(secret)):
        raise AuthenticationError("invalid client")
    if row.revoked_at is not None:
        raise AuthenticationError("client has been revoked")
    return _oauth_client(row)


async def active_oauth_client(uow: UnitOfWork, client_row_id: UUID) -> OAuthClient:
    row = (
        await uow.execute(
            select(oauth_clients).where(
                oauth_clients.c.workspace_id == uow.workspace_id,
                oauth_clients.c.id == client_row_id,
            )
        )
    ).first()
    if row is None or row.revoked_at is not None:
        raise AuthenticationError("client has been revoked")
    return _oauth_client(row)


async def revoke_oauth_client(uow: UnitOfWork, client_row_id: UUID) -> OAuthClient:
    row = (
        await uow.execute(
            update(oauth_clients)
            .where(
                oauth_clients.c.workspace_id == uow.workspace_id,
                oauth_clients.c.id == client_row_id,
            )
            .values(revoked_at=func.coalesce(oauth_clients.c.revoked_at, uow.clock.now()))
            .returning(*oauth_clients.c)
        )
    ).first()
    if row is None:
        raise NotFoundError("OAuth client not found", field="id")
    return _oauth_client(row)
