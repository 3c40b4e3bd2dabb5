"""The hit writer: what it holds is stored, kept through a failure, and dropped only when its
workspace is gone."""

import asyncio
import uuid
from datetime import UTC, datetime
from uuid import UUID

import psycopg

from delivery.tracking.capture import Captured, HitWriter
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.conftest import new_workspace
from tests.support.database import APP_ROLE


def _hit(workspace_id: UUID) -> Captured:
    return Captured(workspace_id, uuid.uuid4(), "open", uuid.uuid4(), 0, None,
                    datetime.now(UTC), "192.0.2.1", "Mozilla/5.0")  # fmt: skip


def _run(database_url: str, work: "object") -> None:
    async def main() -> None:
        engine = create_engine(database_url, role=APP_ROLE, pool_size=2)
        sessions = session_factory(engine)
        try:
            await work(lambda ws: UnitOfWork(sessions, workspace_id=ws))  # type: ignore[operator]
        finally:
            await engine.dispose()

    asyncio.run(main())


def _count(database_url: str, ws: UUID) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM tracking_hits WHERE workspace_id = %s",
                           (ws,)).fetchone()  # fmt: skip
    return int(row[0]) if row else 0


def test_hits_are_stored_on_cancel_and_a_gone_workspace_does_not_hold_up_the_rest(database_url):
    ws = new_workspace(database_url, "capture").workspace.id
    gone = uuid.uuid4()

    async def work(units: object) -> None:
        writer = HitWriter(units, flush_every=0.01)  # type: ignore[arg-type]
        task = asyncio.create_task(writer.run())
        for _ in range(5):
            writer.add(_hit(ws))
        writer.add(_hit(gone))
        await asyncio.sleep(0.2)
        for _ in range(3):
            writer.add(_hit(ws))
        task.cancel()  # a server stopping: what is held is stored before the task ends
        await asyncio.gather(task, return_exceptions=True)
        assert (writer.stored, writer.dropped, writer.held) == (8, 1, 0)

    _run(database_url, work)
    assert _count(database_url, ws) == 8
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM outbox WHERE actor_name = 'tracking_process' "
                           "AND args = jsonb_build_array(%s::text)", (str(ws),)).fetchone()  # fmt: skip
    assert row == (1,), "two flushes queue the workspace's job once"


def test_hits_are_kept_while_the_database_fails_and_stored_when_it_answers(database_url):
    ws = new_workspace(database_url, "outage").workspace.id
    failing = {"left": 2}

    async def work(units: object) -> None:
        def flaky(workspace_id: UUID) -> UnitOfWork:
            if failing["left"]:
                failing["left"] -= 1
                raise ConnectionError("database unreachable")
            return units(workspace_id)  # type: ignore[operator, no-any-return]

        writer = HitWriter(flaky, flush_every=0.01)
        for _ in range(4):
            writer.add(_hit(ws))
        await writer.drain(attempts=1)
        assert (writer.stored, writer.held) == (0, 4), "kept after a failure"
        await writer.drain(attempts=1)
        await writer.drain(attempts=1)
        assert (writer.stored, writer.held) == (4, 0)

    _run(database_url, work)
    assert _count(database_url, ws) == 4


def test_a_writer_stopped_in_the_middle_of_a_transaction_stores_that_batch_before_it_ends(
    database_url,
):
    ws = new_workspace(database_url, "stopping").workspace.id

    async def work(units: object) -> None:
        started = asyncio.Event()

        def slow(workspace_id: UUID) -> UnitOfWork:
            started.set()
            return units(workspace_id)  # type: ignore[operator, no-any-return]

        writer = HitWriter(slow, flush_every=0.0)
        for _ in range(50):
            writer.add(_hit(ws))
        task = asyncio.create_task(writer.run())
        await started.wait()
        task.cancel()  # while the first transaction is under way
        await asyncio.gather(task, return_exceptions=True)
        assert writer.held == 0

    _run(database_url, work)
    assert _count(database_url, ws) == 50
