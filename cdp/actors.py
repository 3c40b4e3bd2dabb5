"""CDP background jobs."""

from datetime import timedelta

import dramatiq
import structlog

from cdp import retention
from cdp.segments import services as segment_services
from consent import audit
from domain import broker as _broker  # noqa: F401 - binds actors to a broker before declaring
from domain import jobs

log = structlog.get_logger(__name__)


@dramatiq.actor(queue_name="maintenance", max_retries=5)
async def enforce_event_retention(days: int) -> None:
    """Drop event partitions older than the retention period (idempotent)."""
    runtime = jobs.runtime()
    async with runtime.uow() as uow:
        dropped = await retention.drop_expired_partitions(uow, days=days)
        await uow.commit()
    queued = await retention.reevaluate_after_drop(runtime.uow, days=days) if dropped else 0
    log.info("events.retention", days=days, partitions_dropped=dropped, segments_queued=queued)


@dramatiq.actor(queue_name="maintenance", max_retries=5)
async def enforce_workspace_retention() -> None:
    """Delete events past each workspace's own retention period, one workspace at a time."""
    runtime = jobs.runtime()
    async with runtime.uow() as uow:
        periods = await retention.retention_periods(uow)
    for workspace_id, days in periods:
        before = retention.expiry(runtime.clock.now(), days)
        total = 0
        while True:
            # Each batch commits with its own audit entry: what is gone is
            # always accounted for, even if the job stops half-way.
            async with runtime.uow(workspace_id) as uow:
                deleted = await retention.delete_expired_events(
                    uow, before=before, limit=retention.DELETE_BATCH
                )
                if deleted:
                    await audit.record(
                        uow,
                        audit.Actor.system("retention"),
                        "retention.events_deleted",
                        object_type="workspace",
                        object_id=workspace_id,
                        details={"days": days, "events": deleted},
                    )
                await uow.commit()
            total += deleted
            if deleted < retention.DELETE_BATCH:
                break
        if total:
            # Segments that count events this old may have lost members.
            async with runtime.uow(workspace_id) as uow:
                await segment_services.events_removed(uow, older_than=timedelta(days=days))
                await uow.commit()
        log.info("events.workspace_retention", workspace_id=str(workspace_id), deleted=total)
