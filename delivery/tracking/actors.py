"""Tracking jobs: a workspace's hits and sending outcomes processed, counters rolled up."""

from collections.abc import Awaitable, Callable
from uuid import UUID

import dramatiq
import psycopg
import structlog
from sqlalchemy.exc import DBAPIError

from delivery.tracking import conversions, machines, processing, repository
from domain import broker as _broker  # noqa: F401 - binds actors to a broker before declaring
from domain import jobs
from domain.uow import UnitOfWork

log = structlog.get_logger(__name__)
RETRIES, BACKOFF_MS = 10, 1000
SWEEP_ACTOR = "tracking_sweep"

_rules = machines.Rules(machines.ProxyRanges.builtin())


def configure(rules: machines.Rules) -> None:
    """Set, once per worker process, how machine opens and clicks are told apart."""
    global _rules  # noqa: PLW0603 - one per worker process
    _rules = rules


@dramatiq.actor(actor_name=repository.PROCESS_ACTOR, queue_name=repository.QUEUE,
                max_retries=RETRIES, min_backoff=BACKOFF_MS)  # fmt: skip
async def tracking_process(workspace_id: str) -> None:
    await run_workspace(UUID(workspace_id))


@dramatiq.actor(actor_name=SWEEP_ACTOR, queue_name=repository.QUEUE, max_retries=0)
async def tracking_sweep() -> None:
    """Every few seconds: what the trigger on deliveries queued, and hits whose job was lost."""
    runtime = jobs.runtime()
    async with runtime.uow() as uow:
        pending = await repository.workspaces_with_work(uow)
    for workspace_id in pending:
        try:
            await run_workspace(workspace_id)
        except Exception:  # the next sweep tries again
            log.exception("tracking.workspace_failed", workspace_id=str(workspace_id))


async def run_workspace(workspace_id: UUID) -> int:
    """Process all the workspace's hits and sending outcomes, then roll its counters up."""
    runtime = jobs.runtime()
    async with runtime.uow(workspace_id) as uow:
        await repository.take_request(uow)
        await uow.commit()
    total = 0
    for step in (_hits, processing.process_message_events, conversions.attribute_orders):
        while done := await _batch(workspace_id, step):
            total += done
    async with runtime.uow(workspace_id) as uow:
        await repository.roll_up(uow)
        await uow.commit()
    return total


async def _hits(uow: UnitOfWork, limit: int = processing.BATCH) -> int:
    return await processing.process_hits(uow, _rules, limit)


async def _batch(workspace_id: UUID, step: Callable[..., Awaitable[int]]) -> int:
    """One batch in one transaction; a batch that fails for its content is done one by one."""
    runtime = jobs.runtime()
    try:
        async with runtime.uow(workspace_id) as uow:
            done = await step(uow)
            await uow.commit()
            return done
    except Exception as error:
        if _transient(error):
            raise
        log.exception("tracking.batch_failed", workspace_id=str(workspace_id), step=step.__name__)
    async with runtime.uow(workspace_id) as uow:
        done = await step(uow, 1)
        await uow.commit()
        return done


def _transient(error: BaseException) -> bool:
    cause = error.orig if isinstance(error, DBAPIError) else error
    return isinstance(cause, (psycopg.OperationalError, OSError, TimeoutError))
