"""Tracking jobs: a workspace's hits, sending outcomes and orders processed, counters rolled up."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import dramatiq
import psycopg
import structlog
from sqlalchemy.exc import DBAPIError

from delivery.tracking import conversions, machines, processing, repository
from domain import broker as _broker  # noqa: F401 - binds actors to a broker before declaring
from domain import jobs
from domain.uow import Statement, UnitOfWork

log = structlog.get_logger(__name__)
RETRIES, BACKOFF_MS = 10, 1000
SWEEP_ACTOR = "tracking_sweep"
# Batches of one kind a job takes before it hands over: a storm of hits on one
# workspace does not hold up its orders, nor the other workspaces of a sweep.
MAX_BATCHES = 20

_rules = machines.Rules(machines.ProxyRanges.builtin())


# Processed hits (a reader's address and browser) are kept this long at least, and
# as long as an order can still be credited to their click.
MIN_HIT_DAYS = 30
PRUNE_BATCH = 10_000


def configure(rules: machines.Rules) -> None:
    """Set, once per worker process, how machine opens and clicks are told apart."""
    global _rules  # noqa: PLW0603 - one per worker process
    _rules = rules


@dramatiq.actor(queue_name="maintenance", max_retries=5)
async def prune_hits() -> None:
    """Hourly, from the worker's maintenance."""
    await run_prune()


async def run_prune() -> int:
    """Delete the processed hits past their keeping time, a batch per transaction; how many."""
    runtime = jobs.runtime()
    days = max(MIN_HIT_DAYS, conversions.listener.window.days)
    before = runtime.clock.now() - timedelta(days=days)
    total = 0
    while True:
        async with runtime.uow() as uow:
            deleted = await repository.prune_hits(uow, before, PRUNE_BATCH)
            await uow.commit()
        total += deleted
        if deleted < PRUNE_BATCH:
            break
    if total:
        log.info("tracking.hits_pruned", hits=total, days=days)
    return total


@dataclass(frozen=True)
class _Step:
    name: str
    run: Callable[[UnitOfWork, int], Awaitable[int]]
    skip: Callable[[UnitOfWork], Statement]  # sets aside the first item, which fails alone


async def _hits(uow: UnitOfWork, limit: int) -> int:
    return await processing.process_hits(uow, _rules, limit)


async def _orders(uow: UnitOfWork, limit: int) -> int:
    return await conversions.attribute_orders(uow, processing.settle(_rules), limit)


_STEPS = (
    _Step("hits", _hits, lambda uow: repository.skip_hit(uow, uow.clock.now())),
    _Step("message_events", processing.process_message_events, repository.skip_message_event),
    _Step("orders", _orders, repository.skip_order),
)


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
    """Process the workspace's settled hits, sending outcomes and orders, roll its counters
    up, and come back for what is left (hits still settling, a backlog)."""
    runtime = jobs.runtime()
    async with runtime.uow(workspace_id) as uow:
        await repository.take_request(uow)
        await uow.commit()
    total, more = 0, False
    for step in _STEPS:
        for _ in range(MAX_BATCHES):
            done = await _batch(workspace_id, step)
            total += done
            if done < processing.BATCH:
                break
        else:
            more = True
    async with runtime.uow(workspace_id) as uow:
        await repository.roll_up(uow)
        waiting = await repository.unsettled(uow)
        if more or waiting is not None:
            # Hits still settling are judged once they have; a backlog goes on at once.
            await repository.request_processing(
                uow, None if more else processing.settle(_rules) + timedelta(milliseconds=100)
            )
        await uow.commit()
    return total


async def _batch(workspace_id: UUID, step: _Step) -> int:
    """One batch in one transaction; a batch that fails for its content is taken one item at a
    time, and an item that fails alone is set aside (logged, and a hit kept as failed)."""
    runtime = jobs.runtime()
    try:
        async with runtime.uow(workspace_id) as uow:
            done = await step.run(uow, processing.BATCH)
            await uow.commit()
            return done
    except Exception as error:
        if _transient(error):
            raise
        log.exception("tracking.batch_failed", workspace_id=str(workspace_id), step=step.name)
    try:
        async with runtime.uow(workspace_id) as uow:
            done = await step.run(uow, 1)
            await uow.commit()
            return done
    except Exception as error:
        if _transient(error):
            raise
        log.exception("tracking.item_set_aside", workspace_id=str(workspace_id), step=step.name)
    async with runtime.uow(workspace_id) as uow:
        await uow.pipeline(step.skip(uow))
        await uow.commit()
    return 1


def _transient(error: BaseException) -> bool:
    cause = error.orig if isinstance(error, DBAPIError) else error
    return isinstance(cause, (psycopg.OperationalError, OSError, TimeoutError))
