"""Retention drops whole months of events older than the setting, and nothing newer."""

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from cdp import retention
from cdp.segments import repository as segment_store
from cdp.segments import services as segments
from consent import audit
from consent.keys import Keys
from domain.clock import FrozenClock
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow, recompute_pending
from tests.conftest import new_workspace
from tests.support.database import APP_ROLE, SECRET
from tests.support.factories import event, event_partitions, profile, seeding

ACTOR = audit.Actor.system("test")


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


def test_dropped_months_queue_the_segments_that_count_events_that_old(database_url):
    ws = new_workspace(database_url, "retention-segments").workspace.id
    with seeding(database_url) as conn:
        event_partitions(conn, [date(2004, 1, 1), date(2004, 2, 1), date(2004, 3, 1)])
        buyer = profile(conn, ws, identifiers=[("email", "old-buyer@example.org")])
        event(conn, ws, buyer, name="Order Completed", timestamp=datetime(2004, 1, 10, tzinfo=UTC))
        conn.commit()
    ever = {"event": "Order Completed", "count": {"op": "gte", "value": 1}}
    lately = {"event": "Order Completed", "within": {"days": 7}}

    async def create(uow: UnitOfWork) -> dict[str, uuid.UUID]:
        found = {}
        for name, definition in (("ever ordered", ever), ("ordered lately", lately)):
            row = await segments.create(uow, ACTOR, segments.SegmentInput(name, None, definition))
            found[name] = row.id
        return found

    ids = in_uow(database_url, ws, create)
    recompute_pending(database_url, ws)
    assert in_uow(database_url, ws, lambda u: segment_store.size(u, [ids["ever ordered"]])) == {
        ids["ever ordered"]: 1
    }

    async def drop_and_requeue() -> tuple[int, int]:
        engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
        clock = FrozenClock(datetime(2004, 3, 31, tzinfo=UTC))
        sessions = session_factory(engine)
        try:
            async with UnitOfWork(sessions, clock=clock) as uow:
                dropped = await retention.drop_expired_partitions(uow, days=30)
                await uow.commit()
            queued = await retention.reevaluate_after_drop(
                lambda w: UnitOfWork(sessions, workspace_id=w, clock=clock), days=30
            )
            return dropped, queued
        finally:
            await engine.dispose()

    with psycopg.connect(database_url) as conn:
        [before] = conn.execute("SELECT clock_timestamp()").fetchone() or [None]
    dropped, queued = asyncio.run(drop_and_requeue())
    assert dropped >= 2  # January and February 2004, and older months other tests left
    assert "events_p200401" not in _partitions(database_url)
    # Only the all-time count looks back past 30 days; other workspaces' segments may be queued too.
    with psycopg.connect(database_url) as conn:
        jobs = conn.execute(
            "SELECT args->>1 FROM outbox WHERE actor_name = 'recompute_segment' "
            "AND args->>0 = %s AND created_at > %s",
            (str(ws), before),
        ).fetchall()
    assert [uuid.UUID(j[0]) for j in jobs] == [ids["ever ordered"]]
    assert queued >= 1

    async def run_job(uow: UnitOfWork) -> Any:
        return await segments.recompute(uow, Keys(SECRET), ids["ever ordered"])

    in_uow(database_url, ws, run_job)
    assert in_uow(database_url, ws, lambda u: segment_store.size(u, [ids["ever ordered"]])) == {
        ids["ever ordered"]: 0
    }
