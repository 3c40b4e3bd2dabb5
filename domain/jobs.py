"""What actors need at run time: a session factory, a clock and the relay.

The worker configures this once; the engine is created lazily inside the
worker's event loop, because async connections belong to the loop that
opened them.
"""

from dataclasses import dataclass
from uuid import UUID

import dramatiq
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.clock import Clock, SystemClock
from domain.db import create_engine, session_factory
from domain.outbox import OutboxRelay
from domain.uow import UnitOfWork


@dataclass
class JobRuntime:
    database_url: str
    role: str | None
    broker: dramatiq.Broker
    clock: Clock
    secret: str = ""
    engine: AsyncEngine | None = None
    sessions: async_sessionmaker[AsyncSession] | None = None
    relay: OutboxRelay | None = None

    def _ensure(self) -> tuple[async_sessionmaker[AsyncSession], OutboxRelay]:
        if self.sessions is None or self.relay is None:
            self.engine = create_engine(self.database_url, role=self.role, pool_size=5)
            self.sessions = session_factory(self.engine)
            self.relay = OutboxRelay(self.sessions, self.broker)
        return self.sessions, self.relay

    def uow(self, workspace_id: UUID | None = None) -> UnitOfWork:
        sessions, relay = self._ensure()
        return UnitOfWork(
            sessions, workspace_id=workspace_id, clock=self.clock, on_commit=relay.wake
        )

    def outbox_relay(self) -> OutboxRelay:
        return self._ensure()[1]

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
        self.engine = self.sessions = self.relay = None


_runtime: JobRuntime | None = None


def configure(
    *,
    database_url: str,
    role: str | None,
    broker: dramatiq.Broker,
    clock: Clock | None = None,
    secret: str = "",
) -> JobRuntime:
    """`secret` is the server's signing secret, from which actors derive their keys."""
    global _runtime  # noqa: PLW0603 - one runtime per worker process
    _runtime = JobRuntime(database_url, role, broker, clock or SystemClock(), secret)
    return _runtime


def runtime() -> JobRuntime:
    if _runtime is None:
        raise RuntimeError("job runtime is not configured; start workers with `cdp worker`")
    return _runtime
