"""A profile's identity conflicts: those it holds and those it was refused, each once."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from cdp import queries
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.support.database import APP_ROLE
from tests.support.factories import identity_conflict, profiles, seeding


async def _read(database_url: str, ws: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, list]:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=ws) as uow:
            return await queries.conflicts_of(uow, ids)
    finally:
        await engine.dispose()


def test_each_side_of_a_conflict_sees_it_once_in_time_order(database_url, workspace):
    ws = workspace.workspace.id
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with seeding(database_url) as conn:
        a, b, c = profiles(conn, ws, 3)
        later = identity_conflict(
            conn, ws, held_by=b, claimed_by=a, created_at=start + timedelta(minutes=2)
        )
        first = identity_conflict(conn, ws, held_by=a, claimed_by=b, created_at=start)
        own = identity_conflict(
            conn, ws, held_by=a, claimed_by=a, created_at=start + timedelta(minutes=1)
        )
        identity_conflict(conn, ws, held_by=c, claimed_by=c, created_at=start)
    found = asyncio.run(_read(database_url, ws, [a, b]))
    assert [r.id for r in found[a]] == [first, own, later]
    assert [r.id for r in found[b]] == [first, later]
    assert c not in found
