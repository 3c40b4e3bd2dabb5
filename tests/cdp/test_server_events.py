"""Events the server records on a profile it knows by id: on the survivor, once, never lost to a
merge under way."""

import asyncio
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest

from cdp import server_events, traits
from cdp.model import Message
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.cdp.test_ingest import T0, msg
from tests.support.database import APP_ROLE
from tests.support.factories import libpq_url, profile, seeding

QUIET = "Test Quietly Noted"
traits.not_activity(QUIET)


def _event(mid: str) -> Message:
    return msg(name=QUIET, mid=mid, props={"delivery_id": mid})


async def _record(database_url: str, workspace_id: uuid.UUID,
                  events: list[tuple[uuid.UUID, Message]]) -> int:  # fmt: skip
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=workspace_id) as uow:
            stored = await server_events.record(uow, events)
            await uow.commit()
            return stored
    finally:
        await engine.dispose()


def _stored(database_url: str, workspace_id: uuid.UUID) -> list[tuple[Any, ...]]:
    with seeding(database_url) as conn:
        return conn.execute(
            "SELECT profile_id, message_id, name FROM events WHERE workspace_id = %s "
            "ORDER BY message_id",
            (workspace_id,),
        ).fetchall()


def test_events_land_on_each_survivor_once_and_a_gone_profile_gets_none(database_url, workspace):
    ws = workspace.workspace.id
    with seeding(database_url) as conn:
        survivor = profile(conn, ws)
        merged = profile(conn, ws, merged_into=survivor)
        plain = profile(conn, ws)
    events = [(merged, _event("m-1")), (plain, _event("m-2")), (plain, _event("m-2")),
              (uuid.uuid4(), _event("m-3"))]  # fmt: skip
    assert asyncio.run(_record(database_url, ws, events)) == 2
    assert _stored(database_url, ws) == [(survivor, "m-1", QUIET), (plain, "m-2", QUIET)]
    # Recorded again (a sweep that rolled back and ran twice, say): nothing new.
    assert asyncio.run(_record(database_url, ws, events)) == 0
    assert len(_stored(database_url, ws)) == 2


def test_an_event_that_changes_its_profile_is_refused(database_url, workspace):
    ws = workspace.workspace.id
    with seeding(database_url) as conn:
        someone = profile(conn, ws)
    with pytest.raises(ValueError, match="goes through ingest"):
        asyncio.run(_record(database_url, ws, [(someone, msg(name="Order Completed", at=T0))]))
    assert _stored(database_url, ws) == []


def test_a_merge_under_way_is_waited_for_and_its_survivor_gets_the_event(database_url, workspace):
    ws = workspace.workspace.id
    with seeding(database_url) as conn:
        target = profile(conn, ws)
        source = profile(conn, ws)
    locked, release = threading.Event(), threading.Event()

    def merge() -> None:
        # As a merge does: both profiles locked FOR UPDATE first, the source pointed at its
        # target, committed a while later.
        with psycopg.connect(libpq_url(database_url)) as conn:
            conn.execute("SELECT id FROM profiles WHERE workspace_id = %s AND id = ANY(%s) "
                         "ORDER BY id FOR UPDATE", (ws, [target, source]))  # fmt: skip
            conn.execute("UPDATE profiles SET merged_into = %s WHERE workspace_id = %s "
                         "AND id = %s", (target, ws, source))  # fmt: skip
            locked.set()
            release.wait(10)

    merging = threading.Thread(target=merge)
    merging.start()
    assert locked.wait(10)
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    stored = asyncio.run(_record(database_url, ws, [(source, _event("m-1"))]))
    merging.join(10)
    assert time.monotonic() - started >= 0.4, "the record did not wait for the merge"
    assert stored == 1
    assert _stored(database_url, ws) == [(target, "m-1", QUIET)]
