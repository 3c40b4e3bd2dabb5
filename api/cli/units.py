"""A command's unit of work in a workspace named on the command line."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from api import embedded
from api.settings import get_settings
from domain.db import create_engine, session_factory
from domain.errors import NotFoundError, ValidationError
from domain.uow import UnitOfWork
from domain.workspaces import get_workspaces


def uuid_option(value: str, what: str) -> UUID:
    try:
        return UUID(value.strip())
    except ValueError:
        raise ValidationError(f"{what} must be a UUID, not {value!r}") from None


@asynccontextmanager
async def workspace_unit(workspace: str) -> AsyncIterator[UnitOfWork]:
    """A unit of work of the `--workspace` given, which must exist; its engine goes with it."""
    settings = get_settings()
    workspace_id = uuid_option(workspace, "--workspace")
    engine = create_engine(
        embedded.database_url(settings), role=settings.app_db_role or None, pool_size=1
    )
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=workspace_id) as uow:
            if workspace_id not in await get_workspaces(uow, [workspace_id]):
                raise NotFoundError(f"no workspace with id {workspace_id}")
            yield uow
    finally:
        await engine.dispose()
