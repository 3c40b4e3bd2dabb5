"""How many rows a piece of work fetched from some tables through their indexes.

A read that should probe a key, counted, tells a plan that walks a table
from one that does not, whatever the size of the test's tables.
"""

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from domain.db import create_engine, session_factory
from domain.uow import Statement, UnitOfWork
from tests.support.database import APP_ROLE

# The rows this transaction has fetched so far, by index, from the tables named like it.
_FETCHED = (
    "SELECT coalesce(sum(idx_tup_fetch), 0) AS n FROM pg_stat_xact_user_tables "
    "WHERE relname LIKE %(tables)s"
)


async def rows_fetched(
    database_url: str, ws: UUID, tables: str, read: Callable[[UnitOfWork], Awaitable[Any]]
) -> int:
    """Rows `read` fetched by index from the tables whose names are LIKE `tables`, in a unit
    of work of the runtime role."""
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    counted = Statement(_FETCHED, {"tables": tables})
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=ws) as uow:
            [[before]] = await uow.pipeline(counted)
            await read(uow)
            [[after]] = await uow.pipeline(counted)
            return int(after.n) - int(before.n)
    finally:
        await engine.dispose()
