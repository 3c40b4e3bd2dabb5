"""Running segment services as the worker would: in a unit of work of the runtime role."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from sqlalchemy import select

from cdp.segments import repository, services, upkeep
from cdp.segments.repository import MembershipChange
from cdp.segments.tables import segments
from consent.keys import Keys
from domain.clock import Clock, FrozenClock
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.support.database import APP_ROLE, SECRET
from tests.support.jobs import as_worker

T = TypeVar("T")


def in_uow(
    database_url: str,
    workspace_id: UUID,
    work: Callable[[UnitOfWork], Awaitable[T]],
    *,
    clock: Clock | None = None,
) -> T:
    """Run `work` in one committed unit of work of the workspace."""

    async def run() -> T:
        engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
        try:
            sessions = session_factory(engine)
            async with UnitOfWork(sessions, workspace_id=workspace_id, clock=clock) as uow:
                result = await work(uow)
                await uow.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


def recompute_pending(
    database_url: str, workspace_id: UUID, *, clock: Clock | None = None
) -> dict[UUID, MembershipChange | None]:
    """Evaluate in full every segment of the workspace whose definition changed, as its job would."""

    async def work(uow: UnitOfWork) -> dict[UUID, MembershipChange | None]:
        rows = await uow.execute(
            select(segments.c.id, segments.c.version).where(
                segments.c.workspace_id == uow.workspace_id,
                segments.c.computed_version < segments.c.version,
            )
        )
        return {
            row.id: await services.recompute(uow, Keys(SECRET), row.id, version=row.version)
            for row in rows.all()
        }

    return in_uow(database_url, workspace_id, work, clock=clock)


def run_upkeep(database_url: str, workspace_id: UUID, *, clock: Clock | None = None) -> int:
    """Run the workspace's upkeep job body, as a worker would; how many profiles it took."""
    from cdp.segments import actors

    return as_worker(database_url, lambda: actors.run_upkeep(workspace_id), clock=clock)


def sweep(database_url: str, workspace_id: UUID, segment_id: UUID, now: datetime) -> None:
    """Move one time-window segment to `now`, as the worker's sweep does."""

    async def work(uow: UnitOfWork) -> None:
        row = await repository.get(uow, segment_id)
        assert row is not None
        await upkeep.sweep_segment(uow, Keys(SECRET), row)

    in_uow(database_url, workspace_id, work, clock=FrozenClock(now))
