"""Opens and clicks taken from the HTTP endpoints and stored without keeping anyone waiting.

The endpoint answers at once (the redirect, the pixel) and hands the hit to
a `HitWriter`, which stores what arrived meanwhile in one transaction per
workspace a few times a second and asks a worker to process it. A hit stays
in memory until its transaction has committed: when the database cannot be
reached, the writer keeps the hits and tries again, and on shutdown it
stores what it holds before the process ends. What it holds is bounded
(`limit`); past it, the oldest hits are dropped and the drop is logged.
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg
import structlog
from sqlalchemy.exc import IntegrityError

from delivery.tracking import repository
from domain.uow import UnitOfWork

log = structlog.get_logger(__name__)

FLUSH_EVERY = 0.02  # seconds between transactions while hits arrive
MAX_BATCH = 2_000
LIMIT = 1_000_000
RETRY_AFTER = 1.0
Units = Callable[[UUID], UnitOfWork]


@dataclass(frozen=True, slots=True)
class Captured:
    """One request for a pixel or a link, as it arrived."""

    workspace_id: UUID
    id: UUID
    kind: str  # "open" or "click"
    delivery_id: UUID
    link: int
    url: str | None
    at: datetime
    ip: str | None
    user_agent: str | None


class HitWriter:
    def __init__(self, units: Units, *, flush_every: float = FLUSH_EVERY,
                 max_batch: int = MAX_BATCH, limit: int = LIMIT) -> None:  # fmt: skip
        self._units = units
        self._flush_every = flush_every
        self._max_batch = max_batch
        self._limit = limit
        self._held: deque[Captured] = deque()
        self._arrived = asyncio.Event()
        self.stored = 0
        self.dropped = 0

    @property
    def held(self) -> int:
        return len(self._held)

    def add(self, hit: Captured) -> None:
        """Keep a hit for the next transaction; never waits."""
        if len(self._held) >= self._limit:
            self._held.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error("tracking.hits_dropped", dropped=self.dropped, limit=self._limit)
        self._held.append(hit)
        self._arrived.set()

    async def run(self) -> None:
        """Store hits as they arrive, until cancelled; then store what is left."""
        try:
            while True:
                if not self._held:
                    await self._arrived.wait()
                    self._arrived.clear()
                # Let a group form: under steady traffic a transaction per `flush_every`
                # holds many hits, where flushing back to back would store a few each.
                await asyncio.sleep(self._flush_every)
                stored = await self._flush_once()
                while stored and len(self._held) >= self._max_batch:
                    stored = await self._flush_once()
                if not stored:
                    await asyncio.sleep(RETRY_AFTER)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.drain(attempts=3))
            if self._held:
                log.error("tracking.hits_not_stored_at_shutdown", held=len(self._held))

    async def drain(self, *, attempts: int = 1) -> None:
        """Store everything held now, trying each batch up to `attempts` times."""
        failures = 0
        while self._held and failures < attempts:
            if not await self._flush_once():
                failures += 1
                await asyncio.sleep(RETRY_AFTER if failures < attempts else 0)

    async def _flush_once(self) -> bool:
        batch = [self._held.popleft() for _ in range(min(self._max_batch, len(self._held)))]
        by_workspace: dict[UUID, list[Captured]] = {}
        for hit in batch:
            by_workspace.setdefault(hit.workspace_id, []).append(hit)
        pending = list(by_workspace.items())
        failed: list[Captured] = []
        try:
            while pending:
                workspace_id, hits = pending[0]
                try:
                    await self._store(workspace_id, hits)
                except (IntegrityError, psycopg.IntegrityError):
                    # The workspace was deleted since the message was sent: nobody to count for.
                    log.warning("tracking.workspace_gone", workspace_id=str(workspace_id),
                                hits=len(hits))  # fmt: skip
                    self.dropped += len(hits)
                except Exception as error:  # noqa: BLE001 - kept and tried again
                    log.warning("tracking.store_failed", workspace_id=str(workspace_id),
                                hits=len(hits), error=repr(error))  # fmt: skip
                    failed.extend(hits)
                pending.pop(0)
        except BaseException:
            # Cancelled mid-transaction (the server stopping): what may not have committed is
            # kept for the last drain; a hit stored twice is one row (its id).
            failed.extend(hit for _, hits in pending for hit in hits)
            raise
        finally:
            self._held.extendleft(reversed(failed))
        return not failed

    async def _store(self, workspace_id: UUID, hits: list[Captured]) -> None:
        async with self._units(workspace_id) as uow:
            uow.defer(repository.queue_hits(uow, hits))
            await uow.commit()
        self.stored += len(hits)
