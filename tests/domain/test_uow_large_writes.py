"""A large deferred write that travels with the commit is sent whole before its answer is awaited.

Over a socket whose send buffer is smaller than the statement (the embedded
server's Unix socket, or the one shrunk here), psycopg's commit inside a
pipeline once waited for the answer while part of the statement was still
unsent, and the server waited for the rest of it: neither spoke again.
"""

import asyncio
import os
import socket

from domain import workspaces
from domain.db import create_engine, session_factory
from domain.uow import Statement, UnitOfWork
from tests.support.database import APP_ROLE

BIG = 2 * 1024 * 1024
SMALL_BUFFER = 4096


def _shrink_send_buffer(fd: int) -> None:
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    finally:
        sock.close()


async def _deferred_write_with_commit(database_url: str) -> int:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        sessions = session_factory(engine)
        async with UnitOfWork(sessions) as uow:
            created = await workspaces.create_workspace(uow, "large")
            await uow.commit()
        async with UnitOfWork(sessions, workspace_id=created.workspace.id) as uow:
            connection = await uow.session.connection()
            raw = (await connection.get_raw_connection()).driver_connection
            _shrink_send_buffer(raw.pgconn.socket)
            uow.defer(Statement("SELECT length(%(big)s::text)", {"big": "x" * BIG}))
            await asyncio.wait_for(uow.commit(), timeout=20)
            [[row]] = await uow.pipeline(Statement("SELECT 1 AS one"))
            return int(row.one)
    finally:
        await engine.dispose()


def test_a_large_deferred_write_commits_over_a_small_send_buffer(database_url):
    assert asyncio.run(_deferred_write_with_commit(database_url)) == 1
