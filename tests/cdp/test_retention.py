"""Retention drops whole months of events older than the setting, and nothing newer."""

import asyncio
import uuid
from datetime import UTC, date, datetime

import psycopg

from cdp import retention
from domain.clock import FrozenClock
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.support.database import APP_ROLE
from tests.support.factories import event, event_partitions, seeding


def _partitions(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'events'::regclass"
        ).fetchall()
    return {r[0] for r in rows}


async def _drop(database_url: str, now: datetime, days: int) -> int:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), clock=FrozenClock(now)) as uow:
            dropped = await retention.drop_expired_partitions(uow, days=days)
            await uow.commit()
            return dropped
    finally:
        await engine.dispose()


def test_old_months_are_dropped_and_recent_ones_kept(database_url, workspace):
    with seeding(database_url) as conn:
        event_partitions(conn, [date(2003, 1, 1), date(2003, 2, 1)])
        event(
            conn, workspace.workspace.id, uuid.uuid4(), timestamp=datetime(2003, 3, 20, tzinfo=UTC)
        )
    before = _partitions(database_url)
    assert {"events_p200301", "events_p200302", "events_p200303"} <= before
    # 30 days before 2003-03-31 is 2003-03-01: January and February end on or before it.
    dropped = asyncio.run(_drop(database_url, datetime(2003, 3, 31, tzinfo=UTC), 30))
    after = _partitions(database_url)
    assert dropped == 2
    assert "events_p200301" not in after
    assert "events_p200302" not in after
    assert "events_p200303" in after
    assert before - after == {"events_p200301", "events_p200302"}


def test_zero_days_keeps_everything(database_url):
    before = _partitions(database_url)
    assert asyncio.run(_drop(database_url, datetime(2099, 1, 1, tzinfo=UTC), 0)) == 0
    assert _partitions(database_url) == before


def test_cutoff():
    assert retention.cutoff_for(datetime(2026, 3, 31, 12, tzinfo=UTC), 30) == date(2026, 3, 1)
