"""Segment jobs: full evaluations, and following a membership change to the segments that use it."""

from uuid import UUID

import dramatiq
import structlog

from cdp.segments import services
from consent.keys import Keys
from domain import broker as _broker  # noqa: F401 - binds actors to a broker before declaring
from domain import jobs

log = structlog.get_logger(__name__)


@dramatiq.actor(
    actor_name=services.RECOMPUTE_ACTOR, queue_name=services.QUEUE, max_retries=10,
    min_backoff=1000,
)  # fmt: skip
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
    actor_name=services.CHANGED_ACTOR, queue_name=services.QUEUE, max_retries=10,
    min_backoff=1000,
)  # fmt: skip
async def segment_membership_changed(workspace_id: str, segment_id: str, change_id: str) -> None:
    runtime = jobs.runtime()
    async with runtime.uow(UUID(workspace_id)) as uow:
        await services.follow_change(uow, Keys(runtime.secret), UUID(segment_id), UUID(change_id))
        await uow.commit()
