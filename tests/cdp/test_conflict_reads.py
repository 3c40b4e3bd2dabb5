"""A profile's identity conflicts: those it holds and those it was refused, each once."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from cdp import queries
from domain.db import create_engine, libpq_url, session_factory
from domain.uow import UnitOfWork
from tests.support.database import APP_ROLE


def _conflict(
    conn: psycopg.Connection, ws: uuid.UUID, held: uuid.UUID, claimed: uuid.UUID, at: datetime
) -> uuid.UUID:
    conflict_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO identity_conflicts (workspace_id, id, kind, value, held_by, claimed_by, "
        "rule, trigger, created_at) VALUES (%s, %s, 'user_id', %s, %s, %s, "
        "'user_id:max_values=1', 'test', %s)",
        (ws, conflict_id, str(conflict_id), held, claimed, at),
    )
    return conflict_id


async def _read(database_url: str, ws: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, list]:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=ws) as uow:
            return await queries.conflicts_of(uow, ids)
    finally:
        await engine.dispose()


def test_each_side_of_a_conflict_sees_it_once_in_time_order(database_url, workspace):
    ws = workspace.workspace.id
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with psycopg.connect(libpq_url(database_url)) as conn:
        for profile_id in (a, b, c):
            conn.execute(
                "INSERT INTO profiles (workspace_id, id) VALUES (%s, %s)", (ws, profile_id)
            )
        later = _conflict(conn, ws, held=b, claimed=a, at=start + timedelta(minutes=2))
        first = _conflict(conn, ws, held=a, claimed=b, at=start)
        own = _conflict(conn, ws, held=a, claimed=a, at=start + timedelta(minutes=1))
        _conflict(conn, ws, held=c, claimed=c, at=start)
    found = asyncio.run(_read(database_url, ws, [a, b]))
    assert [r.id for r in found[a]] == [first, own, later]
    assert [r.id for r in found[b]] == [first, later]
    assert c not in found
