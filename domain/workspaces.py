"""Workspaces: the unit of tenancy."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Column, DateTime, Integer, Table, Text, func, insert, select, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from domain import credentials
from domain.db import create_engine, metadata, session_factory
from domain.errors import NotFoundError, ValidationError
from domain.ids import new_id
from domain.uow import UnitOfWork

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", PG_UUID(as_uuid=True), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Events older than this many days are deleted by a periodic job; NULL keeps them.
    Column("event_retention_days", Integer),
    # The sender's postal address, which commercial email carries (CAN-SPAM).
    Column("postal_address", Text),
)

MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class Workspace:
    id: UUID
    name: str
    created_at: datetime
    postal_address: str | None = None


@dataclass(frozen=True)
class CreatedWorkspace:
    workspace: Workspace
    api_token: str
    write_key: str


def validate_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise ValidationError("workspace name must not be empty", field="name")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"workspace name must be at most {MAX_NAME_LENGTH} characters", field="name"
        )
    return cleaned


async def create_workspace(uow: UnitOfWork, name: str) -> CreatedWorkspace:
    """Create a workspace with an admin API token and a write key.

    The unit of work is pointed at the new workspace first, so the insert
    passes the row-level security check like every later write.
    """
    cleaned = validate_name(name)
    workspace_id = new_id()
    now = uow.clock.now()
    await uow.select_workspace(workspace_id)
    await uow.execute(insert(workspaces).values(id=workspace_id, name=cleaned, created_at=now))
    _, token = await credentials.issue_api_token(
        uow, name="initial admin token", scopes=frozenset({credentials.ADMIN})
    )
    write_key = await credentials.issue_write_key(uow, name="default")
    return CreatedWorkspace(Workspace(workspace_id, cleaned, now), token, write_key)


async def create_standalone(database_url: str, *, role: str | None, name: str) -> CreatedWorkspace:
    """Create a workspace in its own engine and transaction (for the CLI and scripts)."""
    engine = create_engine(database_url, role=role, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine)) as uow:
            created = await create_workspace(uow, name)
            await uow.commit()
            return created
    finally:
        await engine.dispose()


async def get_workspaces(uow: UnitOfWork, ids: list[UUID]) -> dict[UUID, Workspace]:
    rows = await uow.execute(select(workspaces).where(workspaces.c.id.in_(ids)))
    return {row.id: Workspace(row.id, row.name, row.created_at, row.postal_address) for row in rows}


async def current_workspace(uow: UnitOfWork) -> Workspace:
    found = await get_workspaces(uow, [uow.workspace_id])
    if uow.workspace_id not in found:
        raise NotFoundError("workspace not found")
    return found[uow.workspace_id]


async def set_postal_address(uow: UnitOfWork, address: str | None) -> None:
    await uow.execute(
        update(workspaces).where(workspaces.c.id == uow.workspace_id).values(postal_address=address)
    )
