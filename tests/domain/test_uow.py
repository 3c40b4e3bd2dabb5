"""The unit of work rolls back unless committed and scopes every transaction."""

import asyncio

from sqlalchemy import select, text

from domain import workspaces
from domain.clock import FrozenClock
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.support.database import APP_ROLE


async def _roundtrip(database_url: str, *, commit: bool) -> tuple[bool, str]:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        sessions = session_factory(engine)
        async with UnitOfWork(sessions) as uow:
            created = await workspaces.create_workspace(uow, "maybe")
            if commit:
                await uow.commit()
        async with UnitOfWork(sessions, workspace_id=created.workspace.id) as uow:
            found = await workspaces.get_workspaces(uow, [created.workspace.id])
            setting = (
                await uow.execute(text("SELECT current_setting('cdp.workspace_id', true)"))
            ).scalar()
        return bool(found), str(setting)
    finally:
        await engine.dispose()


def test_uncommitted_work_is_rolled_back(database_url):
    found, _ = asyncio.run(_roundtrip(database_url, commit=False))
    assert found is False


def test_committed_work_persists(database_url):
    found, setting = asyncio.run(_roundtrip(database_url, commit=True))
    assert found is True
    assert setting


async def _workspace_survives_commit(database_url: str) -> tuple[int, int]:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine)) as uow:
            created = await workspaces.create_workspace(uow, "twice")
            await uow.commit()
            # A new transaction begins here; it must still be scoped to the workspace.
            before = len((await uow.execute(select(workspaces.workspaces))).all())
            await uow.commit()
            after = len((await uow.execute(select(workspaces.workspaces))).all())
            assert uow.workspace_id == created.workspace.id
            return before, after
    finally:
        await engine.dispose()


def test_workspace_setting_is_reapplied_after_commit(database_url):
    assert asyncio.run(_workspace_survives_commit(database_url)) == (1, 1)


def test_frozen_clock_moves_only_when_told():
    from datetime import UTC, datetime, timedelta

    clock = FrozenClock(datetime(2026, 1, 31, tzinfo=UTC))
    assert clock.now() == datetime(2026, 1, 31, tzinfo=UTC)
    clock.advance(timedelta(days=1))
    assert clock.now() == datetime(2026, 2, 1, tzinfo=UTC)
