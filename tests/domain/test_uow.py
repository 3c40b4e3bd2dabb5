"""The unit of work rolls back unless committed and scopes every transaction."""

import asyncio
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from domain import workspaces
from domain.clock import FrozenClock
from domain.db import IDLE_PING_SECONDS, create_engine, libpq_url, session_factory
from domain.uow import Statement, UnitOfWork
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


async def _deferred(database_url: str) -> tuple[list[str], list[str], list[str]]:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    sessions = session_factory(engine)
    # Raw SQL: the unit of work's deferral of a raw statement is what this tests.
    insert = "INSERT INTO event_message_ids (workspace_id, message_id) VALUES (%(ws)s, %(m)s)"
    read = "SELECT message_id FROM event_message_ids ORDER BY message_id"
    try:
        async with UnitOfWork(sessions) as uow:
            ws = (await workspaces.create_workspace(uow, "deferred")).workspace.id
            await uow.commit()
        async with UnitOfWork(sessions, workspace_id=ws) as uow:
            uow.defer(Statement(insert, {"ws": ws, "m": "rolled-back"}))
            await uow.rollback()
            uow.defer(Statement(insert, {"ws": ws, "m": "committed"}))
            await uow.commit()
        async with UnitOfWork(sessions, workspace_id=ws) as uow:
            uow.defer(Statement(insert, {"ws": ws, "m": "seen-by-a-later-read"}))
            # A later statement, raw or through SQLAlchemy, sees the deferred one.
            raw = [r.message_id for r in await uow.fetch(read)]
            orm = [r.message_id for r in await uow.execute(text(read))]
        async with UnitOfWork(sessions, workspace_id=ws) as uow:
            stored = [r.message_id for r in await uow.fetch(read)]
        return raw, orm, stored
    finally:
        await engine.dispose()


def test_deferred_statements_go_with_the_commit_or_the_next_statement(database_url):
    raw, orm, stored = asyncio.run(_deferred(database_url))
    assert raw == orm == ["committed", "seen-by-a-later-read"]
    assert stored == ["committed"]  # the last unit of work never committed


async def _survives_a_dead_idle_connection(database_url: str) -> int:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    sessions = session_factory(engine)
    try:
        async with UnitOfWork(sessions) as uow:
            pid = (await uow.execute(text("SELECT pg_backend_pid()"))).scalar()
        with psycopg.connect(libpq_url(database_url), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        await asyncio.sleep(IDLE_PING_SECONDS + 0.5)
        async with UnitOfWork(sessions) as uow:
            return int((await uow.execute(text("SELECT 1"))).scalar())
    finally:
        await engine.dispose()


def test_a_connection_that_died_while_idle_is_replaced(database_url):
    """Pooled connections idle past IDLE_PING_SECONDS are pinged before use."""
    assert asyncio.run(_survives_a_dead_idle_connection(database_url)) == 1


async def _read_only_runs(database_url: str, *, read_only: bool) -> int:
    """How many statements the one pooled connection has prepared after ten requests."""
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        sessions = session_factory(engine)
        async with UnitOfWork(sessions) as uow:
            created = await workspaces.create_workspace(uow, "reader")
            await uow.commit()
        ws = created.workspace.id
        for _ in range(10):
            async with UnitOfWork(sessions, workspace_id=ws, read_only=read_only) as uow:
                await uow.fetch("SELECT count(*) FROM workspaces WHERE id = %(ws)s", {"ws": ws})
        async with UnitOfWork(sessions, workspace_id=ws, read_only=read_only) as uow:
            [(prepared,)] = await uow.fetch("SELECT count(*) FROM pg_prepared_statements")
        return int(prepared)
    finally:
        await engine.dispose()


def test_a_read_only_unit_of_work_keeps_the_connections_prepared_statements(database_url):
    # psycopg forgets what it prepared at every rollback; a read-only unit of
    # work ends with a commit, which PostgreSQL makes the same as a rollback.
    assert asyncio.run(_read_only_runs(database_url, read_only=True)) > 0
    assert asyncio.run(_read_only_runs(database_url, read_only=False)) == 0


async def _write_while_read_only(database_url: str) -> None:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), read_only=True) as uow:
            await workspaces.create_workspace(uow, "refused")
    finally:
        await engine.dispose()


def test_a_read_only_unit_of_work_refuses_writes(database_url):
    with pytest.raises(DBAPIError, match="read-only transaction"):
        asyncio.run(_write_while_read_only(database_url))


async def _read_only_after_a_failed_statement(database_url: str) -> list[Any]:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        sessions = session_factory(engine)
        async with UnitOfWork(sessions, read_only=True) as uow:
            with pytest.raises(psycopg.errors.DivisionByZero):
                await uow.pipeline(Statement("SELECT 1/0"))
        # The failed transaction ended (its commit is a rollback) and the one
        # pooled connection serves the next unit of work.
        async with UnitOfWork(sessions, read_only=True) as uow:
            return await uow.fetch("SELECT 42 AS answer")
    finally:
        await engine.dispose()


def test_a_read_only_unit_of_work_whose_statement_failed_still_ends_cleanly(database_url):
    rows = asyncio.run(_read_only_after_a_failed_statement(database_url))
    assert [row.answer for row in rows] == [42]


async def _wakes(database_url: str, sql: str) -> int:
    woken: list[bool] = []
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        sessions = session_factory(engine)
        async with UnitOfWork(sessions, on_commit=lambda: woken.append(True)) as uow:
            uow.defer(Statement(sql, writes_jobs=True))
            await uow.commit()
    finally:
        await engine.dispose()
    return len(woken)


def test_a_deferred_statement_that_may_write_jobs_wakes_the_relay_only_if_it_did(database_url):
    assert asyncio.run(_wakes(database_url, "SELECT 1 WHERE false")) == 0
    assert asyncio.run(_wakes(database_url, "SELECT 1")) == 1


async def _autocommitted(database_url: str) -> tuple[list[str], str, str]:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        sessions = session_factory(engine)
        async with UnitOfWork(sessions) as uow:
            first = await workspaces.create_workspace(uow, "first")
            second = await workspaces.create_workspace(uow, "second")
            await uow.commit()
        rename = "UPDATE workspaces SET name = %(name)s WHERE id = ANY(%(ids)s)"
        ids = [first.workspace.id, second.workspace.id]
        async with UnitOfWork(sessions, workspace_id=first.workspace.id) as uow:
            async with uow.autocommit() as out:
                touched = await out.execute(Statement(rename, {"name": "renamed", "ids": ids}))
                # Another statement on the same connection, after the first committed:
                # an error here does not undo the first.
                with pytest.raises(psycopg.errors.UndefinedTable):
                    await out.execute(Statement("UPDATE no_such_table SET x = 1"))
            assert touched == 1  # row-level security hides the other workspace
        names = []
        for ws in ids:
            async with UnitOfWork(sessions, workspace_id=ws) as uow:
                found = await workspaces.get_workspaces(uow, [ws])
                names.append(found[ws].name)
        # The pool's one connection goes back without the workspace or the commit mode.
        async with engine.connect() as connection:
            left = (
                await connection.execute(
                    text(
                        "SELECT current_setting('cdp.workspace_id', true), "
                        "current_setting('synchronous_commit')"
                    )
                )
            ).one()
        return names, str(left[0] or ""), str(left[1])
    finally:
        await engine.dispose()


def test_autocommit_commits_each_statement_in_its_workspace_and_leaves_no_setting_behind(
    database_url,
):
    names, workspace_left, mode_left = asyncio.run(_autocommitted(database_url))
    assert names == ["renamed", "second"]
    assert workspace_left == ""
    assert mode_left == "on"
