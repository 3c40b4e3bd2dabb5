"""The data-subject request worker: each step in its own transaction, safe to retry."""

from uuid import UUID

import dramatiq
import structlog

from consent.dsr import services
from consent.keys import Keys
from domain import broker as _broker  # noqa: F401 - binds actors to a broker before declaring
from domain import jobs

log = structlog.get_logger(__name__)


@dramatiq.actor(
    actor_name=services.PROCESS_ACTOR, queue_name=services.QUEUE, max_retries=10, min_backoff=2000
)
async def process_data_subject_request(workspace_id: str, request_id: str) -> None:
    """Start, carry out and complete a request; a repeat after completion does nothing."""
    runtime = jobs.runtime()
    workspace, request = UUID(workspace_id), UUID(request_id)
    async with runtime.uow(workspace) as uow:
        pending = await services.start(uow, request)
        await uow.commit()
    if not pending:
        log.info("dsr.nothing_to_do", request_id=request_id)
        return
    async with runtime.uow(workspace) as uow:
        done = await services.carry_out(uow, Keys(runtime.secret), request)
        await uow.commit()
    log.info("dsr.processed", request_id=request_id, type=done.type.value, status=done.status.value)
