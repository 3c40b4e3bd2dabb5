"""What the HTTP layer shares with every request."""

from dataclasses import dataclass

import dramatiq
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.settings import Settings
from domain.clock import Clock
from domain.outbox import OutboxRelay
from domain.uow import UnitOfWork


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: dramatiq.Broker
    relay: OutboxRelay
    clock: Clock
    secret: str

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, clock=self.clock, on_commit=self.relay.wake)
