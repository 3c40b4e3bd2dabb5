"""Periodic maintenance jobs."""

import dramatiq

from domain import broker as _broker  # noqa: F401 - binds actors to a broker before declaring
from domain import jobs, outbox


@dramatiq.actor(queue_name="maintenance", max_retries=5)
async def purge_outbox() -> int:
    """Delete relayed outbox rows older than the retention window."""
    runtime = jobs.runtime()
    async with runtime.uow() as uow:
        cutoff = uow.clock.now() - outbox.SENT_RETENTION
        removed = await outbox.purge_sent(uow.session, cutoff)
        await uow.commit()
    return removed
