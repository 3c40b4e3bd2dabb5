"""Periodic maintenance jobs."""

import dramatiq
import structlog

from domain import broker as _broker  # noqa: F401 - binds actors to a broker before declaring
from domain import jobs, outbox

log = structlog.get_logger(__name__)


@dramatiq.actor(queue_name="maintenance", max_retries=5)
async def purge_outbox() -> None:
    """Delete relayed outbox rows older than the retention window."""
    runtime = jobs.runtime()
    async with runtime.uow() as uow:
        cutoff = uow.clock.now() - outbox.SENT_RETENTION
        removed = await outbox.purge_sent(uow.session, cutoff)
        await uow.commit()
    log.info("outbox.purged", removed=removed)
