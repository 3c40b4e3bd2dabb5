"""CDP background jobs."""

import dramatiq
import structlog

from cdp import retention
from domain import broker as _broker  # noqa: F401 - binds actors to a broker before declaring
from domain import jobs

log = structlog.get_logger(__name__)


@dramatiq.actor(queue_name="maintenance", max_retries=5)
async def enforce_event_retention(days: int) -> None:
    """Drop event partitions older than the retention period (idempotent)."""
    async with jobs.runtime().uow() as uow:
        dropped = await retention.drop_expired_partitions(uow, days=days)
        await uow.commit()
    log.info("events.retention", days=days, partitions_dropped=dropped)
