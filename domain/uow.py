"""The unit of work: one transaction per request or job.

It rolls back unless committed, serialises its database calls (GraphQL
resolves sibling fields concurrently, and a session is not concurrency-safe),
scopes every transaction to its workspace
(`set_config(..., true)` lasts exactly one transaction, so the setting is
re-applied whenever a new transaction begins), and wakes the outbox relay
after a commit that wrote jobs. Services receive it and never commit.
"""

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import await_

from domain import outbox
from domain.clock import Clock, SystemClock
from domain.db import WORKSPACE_SETTING
from domain.errors import AuthenticationError, DomainError

_COMMIT = "COMMIT"
_SET_WORKSPACE = text("SELECT set_config(:name, :value, true)")
_SET_WORKSPACE_RAW = "SELECT set_config(%s, %s, true)"
# For `UnitOfWork.autocommit`: the workspace for the connection's whole session,
# and commits that do not wait for the disk; both undone before it goes back.
_SESSION_SETTINGS = (
    "SELECT set_config(%s, %s, false), set_config('synchronous_commit', 'off', false)"
)
_RESET_WORKSPACE = "SELECT set_config(%s, '', false)"
_RESET_COMMIT_MODE = "RESET synchronous_commit"
_SET_WORKSPACE_READ_ONLY = (
    "SELECT set_config(%s, %s, true), set_config('transaction_read_only', 'on', true)"
)


@dataclass(frozen=True)
class Statement:
    """Raw SQL for `UnitOfWork.pipeline`, with psycopg placeholders (`%(name)s`)."""

    sql: str
    params: Mapping[str, Any] | None = None
    # False plans the statement afresh for its parameters on every run. psycopg
    # otherwise prepares a statement after a few runs, and PostgreSQL may then
    # settle on a generic plan, blind to the parameters; for some statements
    # that plan is many times slower (bench/README.md).
    prepare: bool | None = None
    # The statement may write outbox jobs, and returns a row for each: the
    # relay is woken after commit only if it did.
    writes_jobs: bool = False


def _driver(connection: Any) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under a pooled SQLAlchemy connection."""
    driver = connection.driver_connection
    if not isinstance(driver, psycopg.AsyncConnection):
        raise UnitOfWorkClosedError("the unit of work's connection is gone")
    return driver


async def _begin(connection: psycopg.AsyncConnection[Any], workspace: str, sql: str) -> None:
    # psycopg sends BEGIN before a transaction's first statement; in a pipeline
    # the two travel together, which saves a round trip on every transaction.
    async with connection.pipeline():
        await connection.execute(sql, (WORKSPACE_SETTING, workspace))


class UnitOfWorkClosedError(RuntimeError):
    pass


_UOW = "cdp_unit_of_work"


@event.listens_for(Session, "after_begin")
def _session_began(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    # One listener for every session, not one added per unit of work: adding one
    # per unit of work showed in a lookup's server time (bench/README.md).
    uow = session.info.get(_UOW)
    if isinstance(uow, UnitOfWork):
        uow._after_begin(session, transaction, connection)  # noqa: SLF001 - its own module


class UnitOfWork:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        workspace_id: UUID | None = None,
        clock: Clock | None = None,
        on_commit: outbox.OnCommit | None = None,
        read_only: bool = False,
    ) -> None:
        """`read_only`: every transaction refuses writes, and one left open is committed.

        PostgreSQL makes a read-only transaction's commit the same as its
        rollback, and a commit keeps the statements psycopg has prepared on the
        connection, which it forgets at every rollback: without this, each
        read-only request would plan every statement afresh.
        """
        self._sessions = sessions
        self._read_only = read_only
        self._begin_sql = _SET_WORKSPACE_READ_ONLY if read_only else _SET_WORKSPACE_RAW
        self._workspace_id = workspace_id
        self.clock: Clock = clock or SystemClock()
        self._on_commit = on_commit
        self._session: AsyncSession | None = None
        self._jobs_written = False
        self._lock = asyncio.Lock()
        # While `pipeline` opens the transaction, the workspace setting waits to
        # travel in the pipeline's own round trip instead of one of its own.
        self._defer_begin = False
        self._pending_workspace: str | None = None
        self._deferred: list[Statement] = []

    @property
    def workspace_id(self) -> UUID:
        if self._workspace_id is None:
            raise DomainError("no workspace is selected for this unit of work")
        return self._workspace_id

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise UnitOfWorkClosedError("the unit of work is not open")
        return self._session

    async def __aenter__(self) -> Self:
        session = self._sessions()
        session.sync_session.info[_UOW] = self
        self._session = session
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        self._session = None
        try:
            if self._read_only and exc is None and session.in_transaction():
                await session.commit()
            else:
                await session.rollback()
        except (SQLAlchemyError, psycopg.Error):
            # The connection died with the work (a timeout closed it): SQLAlchemy
            # drops it from the pool, and the work's own error is the one to tell.
            if exc is None:
                raise
        finally:
            await session.close()

    def _after_begin(
        self, _session: Session, _transaction: SessionTransaction, connection: Connection
    ) -> None:
        value = "" if self._workspace_id is None else str(self._workspace_id)
        if self._defer_begin:
            self._pending_workspace = value
        else:
            await_(_begin(_driver(connection.connection), value, self._begin_sql))

    async def _send_pending_workspace(self) -> None:
        """Apply a workspace setting that a failed pipeline never sent."""
        if self._pending_workspace is not None:
            connection = await self.session.connection()
            raw = _driver(await connection.get_raw_connection())
            await _begin(raw, self._pending_workspace, self._begin_sql)
            self._pending_workspace = None

    async def select_workspace(self, workspace_id: UUID) -> None:
        async with self._lock:
            await self._send_pending_workspace()
            self._workspace_id = workspace_id
            if self.session.in_transaction():
                await self.session.execute(
                    _SET_WORKSPACE, {"name": WORKSPACE_SETTING, "value": str(workspace_id)}
                )

    async def enqueue(self, job: outbox.Job) -> UUID:
        """Write a job that runs only if this unit of work commits."""
        if self._deferred:
            await self.pipeline()
        async with self._lock:
            await self._send_pending_workspace()
            job_id = await outbox.add(self.session, job)
            self._jobs_written = True
        return job_id

    def defer(self, *statements: Statement) -> None:
        """Send raw statements with this unit of work's next round trip; their rows are not kept.

        For a final write whose answer nobody reads: committed, it travels
        with the COMMIT, and an error in it surfaces from `commit`.
        """
        self._deferred.extend(statements)

    async def commit(self) -> None:
        if self._deferred:
            await self._run((), commit=True)
        async with self._lock:
            await self.session.commit()
        if self._jobs_written:
            self._jobs_written = False
            if self._on_commit is not None:
                self._on_commit()

    async def rollback(self) -> None:
        async with self._lock:
            self._jobs_written = False
            self._deferred.clear()
            await self.session.rollback()

    async def execute(self, statement: Any, params: Any = None) -> Any:
        if self._deferred:
            await self.pipeline()
        async with self._lock:
            await self._send_pending_workspace()
            return await self.session.execute(statement, params)

    async def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """One raw statement (psycopg placeholders); its rows as named tuples.

        For hot reads: it skips SQLAlchemy's statement machinery, which costs
        several times what psycopg itself does (bench/README.md).
        """
        [rows] = await self.pipeline(Statement(sql, params))
        return rows

    async def pipeline(self, *statements: Statement) -> list[list[Any]]:
        """Run raw statements in order, in this transaction, in one round trip.

        Each still runs as its own statement (under READ COMMITTED, with its
        own snapshot), so a statement sees what an earlier one waited for.
        Returns each statement's rows as named tuples ([] when it has none).
        """
        return await self._run(statements)

    async def _run(
        self, statements: Sequence[Statement], *, commit: bool = False
    ) -> list[list[Any]]:
        async with self._lock:
            self._defer_begin = True
            try:
                connection = await self.session.connection()
            finally:
                self._defer_begin = False
            raw = _driver(await connection.get_raw_connection())
            sync = connection.sync_connection
            if sync is None:
                raise UnitOfWorkClosedError("the unit of work's connection is gone")
            deferred, self._deferred = self._deferred, []
            cursors: list[psycopg.AsyncCursor[Any]] = []
            sent = [*deferred, *statements]
            try:
                await self._send(raw, sync, sent, cursors, commit=commit)
            except psycopg.errors.InvalidAuthorizationSpecification as exc:
                raise AuthenticationError(exc.diag.message_primary or "not authorized") from exc
            for statement, cursor in zip(sent, cursors, strict=False):
                if statement.writes_jobs and cursor.rowcount > 0:
                    self._jobs_written = True
            return [
                await cursor.fetchall() if cursor.description is not None else []
                for cursor in cursors[len(deferred) :]
            ]

    async def _send(
        self,
        raw: psycopg.AsyncConnection[Any],
        sync: Connection,
        statements: Sequence[Statement],
        cursors: list[psycopg.AsyncCursor[Any]],
        *,
        commit: bool,
    ) -> None:
        # Listeners on the engine (statement counters in tests, logging) see
        # these statements as they see SQLAlchemy's own.
        observe = sync.dispatch.before_cursor_execute
        async with raw.pipeline():
            if self._pending_workspace is not None:
                await raw.execute(self._begin_sql, (WORKSPACE_SETTING, self._pending_workspace))
                self._pending_workspace = None
            for statement in statements:
                observe(sync, None, statement.sql, statement.params, None, False)  # noqa: FBT003 - SQLAlchemy's event signature
                cursor = raw.cursor(row_factory=namedtuple_row)
                await cursor.execute(statement.sql, statement.params, prepare=statement.prepare)
                cursors.append(cursor)
            if commit:
                # Queued behind the statements as a plain statement, so that the
                # pipeline's exit sends the whole of a large write before it waits
                # for results: psycopg's `commit()` inside a pipeline waits for
                # them after one flush, and over a socket with small buffers
                # (the embedded server's Unix socket) the server then waits for
                # the rest of the statement while the client waits for its
                # answer. SQLAlchemy's own commit finds the transaction ended and
                # sends nothing.
                await raw.execute(_COMMIT, prepare=False)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator["Autocommit"]:
        """A connection of its own on which each statement commits by itself, without waiting
        for the disk, scoped to this unit of work's workspace.

        For a stream of small writes that must each outlive this process the
        moment they are made (a sent message's outcome), at a fraction of what
        a transaction through the session costs. A crash of the database
        itself may forget the last few.
        """
        workspace = str(self.workspace_id)
        engine = self._sessions.kw["bind"]
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            raw = _driver(await connection.get_raw_connection())
            await raw.execute(_SESSION_SETTINGS, (WORKSPACE_SETTING, workspace))
            try:
                yield Autocommit(raw, self.clock)
            finally:
                if not raw.closed:
                    async with raw.pipeline():
                        await raw.execute(_RESET_WORKSPACE, (WORKSPACE_SETTING,))
                        await raw.execute(_RESET_COMMIT_MODE)


class Autocommit:
    """Statements committed one by one (`UnitOfWork.autocommit`), one at a time.

    Its two cursors are made once, not for every statement: a sending batch
    runs one a message (bench/README.md, "Sending").
    """

    def __init__(self, raw: psycopg.AsyncConnection[Any], clock: Clock) -> None:
        self.clock = clock
        self._raw = raw
        self._cursor = raw.cursor()
        self._rows = raw.cursor(row_factory=namedtuple_row)

    async def execute(self, statement: Statement) -> int:
        """Run and commit one statement; how many rows it touched."""
        await self._cursor.execute(statement.sql, statement.params, prepare=statement.prepare)
        return self._cursor.rowcount

    async def fetch(self, statement: Statement) -> list[Any]:
        """Run and commit one statement; its rows as named tuples."""
        await self._rows.execute(statement.sql, statement.params, prepare=statement.prepare)
        return await self._rows.fetchall()
