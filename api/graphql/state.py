"""What the HTTP layer shares with every request."""

from dataclasses import dataclass
from functools import cached_property

import dramatiq
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.settings import Settings
from consent.keys import Keys
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

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.secret)

    def link(self, path: str) -> str:
        """An absolute URL on this server, for links that go out in mail."""
        return f"{self.settings.base_url.rstrip('/')}{path}"

    def uow(self, *, read_only: bool = False) -> UnitOfWork:
        return UnitOfWork(
            self.sessions, clock=self.clock, on_commit=self.relay.wake, read_only=read_only
        )
