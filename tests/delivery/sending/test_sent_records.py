"""SENT outcomes of batches sending at once: grouped into one statement, each still committed
before its batch goes on, and a group's error reaches every member."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from delivery.sending import campaigns
from delivery.sending.sent_records import SentRecords
from domain.db import create_engine, session_factory
from domain.uow import Autocommit, Statement, UnitOfWork
from tests.cdp.segments.support import in_uow
from tests.conftest import new_workspace
from tests.delivery.sending.test_campaigns import ACTOR, _campaign
from tests.delivery.sending.test_throttle import _recipients
from tests.support.database import APP_ROLE

AT = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
BATCHES = 6


class _Counted(Autocommit):
    """An autocommit connection that keeps the statements it runs (they run for real)."""

    def __init__(self, raw: psycopg.AsyncConnection[Any], clock: Any) -> None:
        super().__init__(raw, clock)
        self.ran: list[Statement] = []

    @property
    def statements(self) -> int:
        return len(self.ran)

    async def execute(self, statement: Statement) -> int:
        self.ran.append(statement)
        return await super().execute(statement)


def _queued(database_url: str, count: int) -> tuple[UUID, list[UUID]]:
    """A workspace with a started campaign of `count` queued deliveries, and their ids."""
    ws = new_workspace(database_url, "sent-records").workspace.id
    _recipients(database_url, ws, [f"p{i}@example.org" for i in range(count)])
    campaign_id = _campaign(database_url, ws)

    async def start(uow: UnitOfWork) -> list[UUID]:
        await campaigns.send(uow, ACTOR, campaign_id)
        await campaigns.start(uow, campaign_id)
        rows = await uow.fetch(
            "SELECT id FROM deliveries WHERE campaign_id = %(c)s ORDER BY id", {"c": campaign_id}
        )
        return [row.id for row in rows]

    return ws, in_uow(database_url, ws, start)


def _sent(database_url: str, ws: UUID) -> dict[UUID, Any]:
    async def read(uow: UnitOfWork) -> dict[UUID, Any]:
        rows = await uow.fetch(
            "SELECT id, message_id, sent_at FROM deliveries WHERE status = 'SENT'", {}
        )
        return {row.id: row for row in rows}

    return in_uow(database_url, ws, read)


@asynccontextmanager
async def _connections(database_url: str, ws: UUID, count: int) -> AsyncIterator[list[_Counted]]:
    """`count` autocommit connections of the workspace, as `count` sending batches hold."""
    engine = create_engine(database_url, role=APP_ROLE, pool_size=count + 1)
    sessions = session_factory(engine)
    try:
        async with AsyncExitStack() as stack:
            found = []
            for _ in range(count):
                uow = await stack.enter_async_context(UnitOfWork(sessions, workspace_id=ws))
                out = await stack.enter_async_context(uow.autocommit())
                found.append(_Counted(out._raw, out.clock))
            yield found
    finally:
        await engine.dispose()


def _record_at_once(
    records: SentRecords, outs: list[_Counted], ws: UUID, ids: list[UUID]
) -> list[Any]:
    return [
        records.record(out, ws, delivery_id, f"<m{n}@shop.example>", AT + timedelta(seconds=n))
        for n, (out, delivery_id) in enumerate(zip(outs, ids, strict=True))
    ]


def test_outcomes_recorded_during_a_write_are_written_together_and_each_is_committed(
    database_url,
):
    ws, ids = _queued(database_url, BATCHES)

    async def main() -> list[int]:
        records = SentRecords()
        async with _connections(database_url, ws, BATCHES) as outs:
            await asyncio.gather(*_record_at_once(records, outs, ws, ids))
            # The first writes alone; the others came during its write, and the first of
            # them writes them all.
            assert [out.statements for out in outs] == [1, 1, 0, 0, 0, 0]
            # Nothing is left behind: the next one writes at once, alone.
            await records.record(outs[0], ws, ids[0], "<again@shop.example>", AT)
            return [out.statements for out in outs]

    assert asyncio.run(main()) == [2, 1, 0, 0, 0, 0]
    sent = _sent(database_url, ws)
    assert set(sent) == set(ids)
    for n, delivery_id in enumerate(ids[1:], start=1):
        assert sent[delivery_id].message_id == f"<m{n}@shop.example>"
        assert sent[delivery_id].sent_at == AT + timedelta(seconds=n)


def test_a_groups_error_is_each_members_and_the_next_outcome_is_written_again(database_url):
    ws, ids = _queued(database_url, BATCHES)

    async def main() -> list[Any]:
        records = SentRecords()
        async with _connections(database_url, ws, BATCHES) as outs:
            await outs[1]._raw.close()  # the group's writer loses its database
            results = await asyncio.gather(
                *_record_at_once(records, outs, ws, ids), return_exceptions=True
            )
            # The group is gone with its error: the next outcome is written.
            await records.record(outs[2], ws, ids[2], "<retry@shop.example>", AT)
            return results

    results = asyncio.run(main())
    assert results[0] is None
    assert all(isinstance(r, psycopg.OperationalError) for r in results[1:]), results
    assert set(_sent(database_url, ws)) == {ids[0], ids[2]}


@pytest.mark.parametrize("count", [1, 3])
def test_a_lone_outcome_waits_for_nobody(database_url, count):
    ws, ids = _queued(database_url, count)

    async def main() -> list[int]:
        records = SentRecords()
        async with _connections(database_url, ws, 1) as [out]:
            for n, delivery_id in enumerate(ids):
                await records.record(out, ws, delivery_id, f"<m{n}@shop.example>", AT)
            return [out.statements]

    assert asyncio.run(main()) == [count]
    assert set(_sent(database_url, ws)) == set(ids)


async def _committed(out: _Counted) -> set[UUID]:
    """The deliveries recorded SENT, read on a connection of the workspace (not counted)."""
    cursor = await out._raw.execute("SELECT id FROM deliveries WHERE status = 'SENT'")
    return {row[0] for row in await cursor.fetchall()}


def test_an_outcome_queued_while_its_batch_makes_the_next_message_goes_with_another_write(
    database_url,
):
    """A batch queues its outcome and makes its next message: a batch that comes to wait first
    writes both outcomes, and the first batch then finds its own committed, with no statement."""
    ws, ids = _queued(database_url, 2)

    async def main() -> list[int]:
        records = SentRecords()
        async with _connections(database_url, ws, 2) as outs:
            making_next = records.submit(ws, ids[0], "<m0@shop.example>", AT)
            await records.record(outs[1], ws, ids[1], "<m1@shop.example>", AT)
            assert await _committed(outs[0]) == set(ids)  # both, by that one write
            await records.wait(outs[0], ws, making_next)
            return [out.statements for out in outs]

    assert asyncio.run(main()) == [0, 1]


def test_an_outcome_nobody_waits_for_yet_is_written_by_the_first_that_waits(database_url):
    """After a write, no batch was waiting: the queued outcome stays queued, and the batch that
    comes to wait for it writes it."""
    ws, ids = _queued(database_url, 2)

    async def main() -> list[int]:
        records = SentRecords()
        async with _connections(database_url, ws, 2) as outs:
            first = records.submit(ws, ids[0], "<m0@shop.example>", AT)
            writing = asyncio.create_task(records.wait(outs[0], ws, first))
            await asyncio.sleep(0)  # the write is under way
            later = records.submit(ws, ids[1], "<m1@shop.example>", AT)
            await writing
            assert await _committed(outs[1]) == {ids[0]}
            await records.wait(outs[1], ws, later)
            return [out.statements for out in outs]

    assert asyncio.run(main()) == [1, 1]
    assert set(_sent(database_url, ws)) == set(ids)
