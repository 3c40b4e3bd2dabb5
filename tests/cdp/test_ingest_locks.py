"""A transaction holds a bounded number of identifier locks, however large its batch.

Only locks taken by a single 64-bit key (objsubid 1) are counted: the event
partitions are created under locks of two 32-bit keys.
"""

import asyncio
from uuid import UUID

from cdp.ingest import ingest
from cdp.queries import MAX_IDENTIFIER_LOCKS
from domain.db import create_engine, session_factory
from domain.uow import Statement, UnitOfWork
from domain.workspaces import CreatedWorkspace
from tests.cdp.test_ingest import msg
from tests.support.database import APP_ROLE

_HELD = (
    "SELECT count(*) FILTER (WHERE mode = 'ExclusiveLock') AS exclusive, "
    "count(*) FILTER (WHERE mode = 'ShareLock') AS shared FROM pg_locks "
    "WHERE locktype = 'advisory' AND objsubid = 1 AND pid = pg_backend_pid() AND granted"
)


async def _locks_held(database_url: str, workspace_id: UUID, users: int) -> tuple[int, int]:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=workspace_id) as uow:
            await ingest(uow, [msg(user=f"user-{i}", name="Seen") for i in range(users)])
            [[row]] = await uow.pipeline(Statement(_HELD))
            await uow.commit()
            return int(row.exclusive), int(row.shared)
    finally:
        await engine.dispose()


def test_a_small_batch_locks_each_identifier_under_a_shared_workspace_lock(
    database_url: str, workspace: CreatedWorkspace
) -> None:
    exclusive, shared = asyncio.run(_locks_held(database_url, workspace.workspace.id, 10))
    # Shared: the workspace's, and the one a change holds against a first segment being made
    # (cdp/segments/repository.py, `change_lock`).
    assert (exclusive, shared) == (10, 2)


def test_a_batch_past_the_limit_takes_the_workspace_lock_alone(
    database_url: str, workspace: CreatedWorkspace
) -> None:
    users = MAX_IDENTIFIER_LOCKS * 5
    exclusive, shared = asyncio.run(_locks_held(database_url, workspace.workspace.id, users))
    assert (exclusive, shared) == (1, 1)  # the shared one: a change's, against a first segment
