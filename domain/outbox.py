"""The transactional outbox and its relay to Dramatiq.

A job is written as a row in the same transaction as the change that causes
it, so it exists if and only if that transaction commits. A relay claims
unsent rows with `FOR UPDATE SKIP LOCKED`, hands them to the broker and
marks them sent in the same transaction. Several relays (the API process and
every worker) can run at once without sending a row twice; a crash between
the broker's accept and the commit re-sends, which is why actors are
idempotent and the Dramatiq message id is the outbox row id.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import dramatiq
import structlog
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.db import metadata
from domain.ids import new_id

log = structlog.get_logger(__name__)

outbox = Table(
    "outbox",
    metadata,
    Column("id", PG_UUID(as_uuid=True), primary_key=True),
    Column("actor_name", Text, nullable=False),
    Column("queue_name", Text, nullable=False),
    Column("args", JSONB, nullable=False),
    Column("kwargs", JSONB, nullable=False),
    Column("options", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Index("ix_outbox_unsent", "created_at", postgresql_where=text("sent_at IS NULL")),
)


@dataclass(frozen=True)
class Job:
    actor_name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None
    queue_name: str = "default"
    delay_ms: int | None = None


async def add(session: AsyncSession, job: Job) -> UUID:
    job_id = new_id()
    options: dict[str, Any] = {}
    if job.delay_ms:
        options["delay_ms"] = job.delay_ms
    await session.execute(
        insert(outbox).values(
            id=job_id,
            actor_name=job.actor_name,
            queue_name=job.queue_name,
            args=list(job.args),
            kwargs=job.kwargs or {},
            options=options,
        )
    )
    return job_id


def _message(row: Any) -> tuple[dramatiq.Message[Any], int | None]:
    options = dict(row.options)
    delay = options.pop("delay_ms", None)
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=row.queue_name,
        actor_name=row.actor_name,
        args=tuple(row.args),
        kwargs=row.kwargs,
        options=options,
        message_id=str(row.id),
        message_timestamp=int(row.created_at.timestamp() * 1000),
    )
    return message, delay


def _send_all(
    broker: dramatiq.Broker, rows: Sequence[Any]
) -> tuple[list[UUID], BaseException | None]:
    sent: list[UUID] = []
    for row in rows:
        message, delay = _message(row)
        try:
            broker.declare_queue(message.queue_name)
            broker.enqueue(message, delay=delay)
        except Exception as exc:  # noqa: BLE001 - any broker failure leaves the row for a later pass
            return sent, exc
        sent.append(row.id)
    return sent, None


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        broker: dramatiq.Broker,
        *,
        batch_size: int = 100,
    ) -> None:
        self._sessions = sessions
        self._broker = broker
        self._batch_size = batch_size
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def relay_batch(self) -> int:
        """Relay one batch. Returns how many rows were sent; raises if the broker failed."""
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(outbox)
                    .where(outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.created_at, outbox.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            sent, error = await asyncio.to_thread(_send_all, self._broker, rows)
            if sent:
                await session.execute(
                    update(outbox).where(outbox.c.id.in_(sent)).values(sent_at=func.now())
                )
            if error is not None:
                failed = rows[len(sent)].id
                await session.execute(
                    update(outbox)
                    .where(outbox.c.id == failed)
                    .values(attempts=outbox.c.attempts + 1, last_error=repr(error)[:2000])
                )
        if error is not None:
            raise error
        return len(sent)

    async def relay_pending(self) -> int:
        total = 0
        while True:
            sent = await self.relay_batch()
            total += sent
            if sent < self._batch_size:
                return total

    async def run(self, interval: float | None) -> None:
        """Relay whenever woken by a commit and, if `interval` is set, that often to catch up."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            self._wake.clear()
            try:
                await self.relay_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must survive broker and DB outages
                log.warning("outbox.relay_failed", error=repr(exc))


async def purge_sent(session: AsyncSession, older_than: datetime) -> int:
    result = await session.execute(
        delete(outbox).where(outbox.c.sent_at.is_not(None), outbox.c.sent_at < older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


OnCommit = Callable[[], None]
SENT_RETENTION = timedelta(days=7)
