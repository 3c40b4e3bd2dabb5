"""Segment jobs: full evaluations, upkeep after changes, the time sweep, and following a change."""

from uuid import UUID

import dramatiq
import structlog

from cdp.segments import repository, services, upkeep
from consent.keys import Keys
from domain import broker as _broker  # noqa: F401 - binds actors to a broker before declaring
from domain import jobs

log = structlog.get_logger(__name__)
QUEUE, RETRIES, BACKOFF_MS = services.QUEUE, 10, 1000


@dramatiq.actor(
    actor_name=services.RECOMPUTE_ACTOR,
    queue_name=QUEUE,
    max_retries=RETRIES,
    min_backoff=BACKOFF_MS,
)
async def recompute_segment(workspace_id: str, segment_id: str, version: int) -> None:
    runtime = jobs.runtime()
    async with runtime.uow(UUID(workspace_id)) as uow:
        change = await services.recompute(
            uow, Keys(runtime.secret), UUID(segment_id), version=version
        )
        await uow.commit()
    if change is not None:
        log.info(
            "segment.recomputed", segment_id=segment_id, version=version,
            entered=change.entered, exited=change.exited,
        )  # fmt: skip


@dramatiq.actor(
    actor_name=services.CHANGED_ACTOR, queue_name=QUEUE, max_retries=RETRIES, min_backoff=BACKOFF_MS
)
async def segment_membership_changed(workspace_id: str, change_id: str) -> None:
    await follow(UUID(workspace_id), UUID(change_id))


async def follow(workspace_id: UUID, change_id: UUID) -> None:
    """Follow a change: the segments that name a moved one, then the followers (journeys)."""
    runtime = jobs.runtime()
    async with runtime.uow(workspace_id) as uow:
        await services.follow_change(uow, Keys(runtime.secret), change_id)
        await services.tell_followers(uow, change_id)
        await uow.commit()


@dramatiq.actor(
    actor_name=upkeep.UPKEEP_ACTOR, queue_name=QUEUE, max_retries=RETRIES, min_backoff=BACKOFF_MS
)
async def segment_upkeep(workspace_id: str) -> None:
    await run_upkeep(UUID(workspace_id))


async def run_upkeep(workspace_id: UUID) -> int:
    """Re-evaluate every queued profile of the workspace, a batch per transaction; how many."""
    runtime = jobs.runtime()
    keys = Keys(runtime.secret)
    # The request goes first: a change committed from now on queues a new job.
    async with runtime.uow(workspace_id) as uow:
        await repository.take_upkeep_request(uow)
        await uow.commit()
    total = 0
    while True:
        async with runtime.uow(workspace_id) as uow:
            claimed = await repository.claim_pending(uow, upkeep.CLAIM_BATCH)
            if not claimed:
                return total
            await upkeep.refresh(uow, keys, claimed)
            await uow.commit()
        total += len(claimed)


@dramatiq.actor(actor_name="segment_sweep", queue_name=services.QUEUE, max_retries=0)
async def segment_sweep() -> None:
    """Every minute: catch up on queued upkeep, and move time-window segments to now."""
    runtime = jobs.runtime()
    keys = Keys(runtime.secret)
    async with runtime.uow() as uow:
        work = await repository.segment_work(uow)
    for workspace_id, timed in work:
        # One workspace's failure must not hold up the others' upkeep and windows.
        try:
            await _sweep_workspace(workspace_id, keys, timed=timed)
        except Exception:  # logged; the next sweep tries again
            log.exception("segments.sweep_failed", workspace_id=str(workspace_id))


async def _sweep_workspace(workspace_id: UUID, keys: Keys, *, timed: bool) -> None:
    runtime = jobs.runtime()
    await run_upkeep(workspace_id)
    if not timed:
        return
    async with runtime.uow(workspace_id) as uow:
        rows = await repository.all_segments(uow)
    for row in rows:
        if row.uses_time:
            async with runtime.uow(workspace_id) as uow:
                await upkeep.sweep_segment(uow, keys, row)
                await uow.commit()
