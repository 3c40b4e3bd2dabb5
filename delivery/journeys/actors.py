"""Journey jobs: events into journeys after ingest, and the timer that moves due enrollments."""

import time
from datetime import timedelta
from uuid import UUID

import dramatiq
import psycopg
import structlog
from sqlalchemy.exc import DBAPIError

from consent.keys import Keys
from delivery.journeys import inbox, repository, timers
from domain import broker as _broker  # noqa: F401 - binds actors to a broker before declaring
from domain import jobs

log = structlog.get_logger(__name__)
RETRIES, BACKOFF_MS = 10, 1000
TICK_ACTOR = "journey_tick"
# A tick moves batches for at most this long, so ticks do not pile up behind
# a backlog; the next tick goes on with it.
TICK_BUDGET_SECONDS = 5.0
# An inbox row older than this has lost its job; the tick applies it.
STALE_INBOX = timedelta(minutes=1)


@dramatiq.actor(actor_name=inbox.INBOX_ACTOR, queue_name=inbox.QUEUE, max_retries=RETRIES,
                min_backoff=BACKOFF_MS)  # fmt: skip
async def journey_inbox(workspace_id: str) -> None:
    await run_inbox(UUID(workspace_id))


async def run_inbox(workspace_id: UUID) -> int:
    """Apply every queued event of the workspace, a batch per transaction; how many enrolled."""
    runtime = jobs.runtime()
    # The request goes first: an event stored from now on queues a new job.
    async with runtime.uow(workspace_id) as uow:
        await repository.take_inbox_request(uow)
        await uow.commit()
    total = 0
    while True:
        try:
            async with runtime.uow(workspace_id) as uow:
                events = await inbox.claim(uow)
                if not events:
                    return total
                total += await inbox.process(uow, events)
                await uow.commit()
        except Exception as error:
            if _transient(error):
                raise  # tried again by the job's retries
            log.exception("journeys.inbox_batch_failed", workspace_id=str(workspace_id))
            total += await _inbox_one_by_one(workspace_id)


async def _inbox_one_by_one(workspace_id: UUID) -> int:
    """A batch of events that failed, applied an event at a time: one that fails on its own is
    logged and dropped, so that it cannot hold up every event after it."""
    runtime = jobs.runtime()
    total = 0
    async with runtime.uow(workspace_id) as uow:
        for event in await inbox.claim(uow):
            try:
                async with uow.session.begin_nested():
                    total += await inbox.process(uow, [event])
            except Exception as error:
                if _transient(error):
                    raise
                log.exception("journeys.event_failed", workspace_id=str(workspace_id),
                              event_id=str(event.id))  # fmt: skip
        await uow.commit()
    return total


@dramatiq.actor(actor_name=TICK_ACTOR, queue_name=inbox.QUEUE, max_retries=0,
                time_limit=60_000)  # fmt: skip
async def journey_tick() -> None:
    """Every second: move the due enrollments of every workspace, and take up inboxes left."""
    moved = await run_due(budget=TICK_BUDGET_SECONDS)
    if moved.moved:
        log.info("journeys.moved", enrollments=moved.moved, messages=moved.sends)
    await run_stale_inboxes()


async def run_stale_inboxes() -> None:
    """Apply the events of inboxes whose job is gone (its retries spent in an outage, say):
    their request row keeps new events from queueing another."""
    runtime = jobs.runtime()
    async with runtime.uow() as uow:
        rows = await uow.fetch(
            "SELECT workspace_id FROM cdp_stale_journey_inboxes(%(before)s)",
            {"before": uow.clock.now() - STALE_INBOX},
        )
    for row in rows:
        try:
            await run_inbox(row.workspace_id)
        except Exception:  # the next tick tries again
            log.exception("journeys.inbox_failed", workspace_id=str(row.workspace_id))


async def run_due(budget: float | None = None) -> timers.Advanced:
    """Move every workspace's due enrollments, a batch per workspace in turn, until none is due
    or the budget (seconds) is spent."""
    runtime = jobs.runtime()
    deadline = None if budget is None else time.monotonic() + budget
    async with runtime.uow() as uow:
        pending = await timers.due_workspaces(uow)
    for workspace_id in pending:
        await _enter_scheduled(workspace_id)
    moved = sent = 0
    while pending and (deadline is None or time.monotonic() < deadline):
        for workspace_id in list(pending):
            done = await _one_batch(workspace_id)
            moved, sent = moved + done.moved, sent + done.sends
            if done.moved < timers.BATCH:
                pending.remove(workspace_id)
    return timers.Advanced(moved, sent)


async def run_workspace(workspace_id: UUID) -> timers.Advanced:
    """Enter the workspace's due date and inactivity triggers, then move all its due
    enrollments."""
    await _enter_scheduled(workspace_id)
    moved = sent = 0
    while True:
        done = await _one_batch(workspace_id)
        moved, sent = moved + done.moved, sent + done.sends
        if done.moved < timers.BATCH:
            return timers.Advanced(moved, sent)


async def _enter_scheduled(workspace_id: UUID) -> None:
    runtime = jobs.runtime()
    try:
        async with runtime.uow(workspace_id) as uow:
            await timers.enter_scheduled(uow)
            await uow.commit()
    except Exception:  # the next tick tries again
        log.exception("journeys.schedule_failed", workspace_id=str(workspace_id))


async def _one_batch(workspace_id: UUID) -> timers.Advanced:
    runtime = jobs.runtime()
    try:
        async with runtime.uow(workspace_id) as uow:
            done = await timers.advance_batch(uow, Keys(runtime.secret))
            await uow.commit()
    except Exception:  # one workspace's failure must not hold up the others
        log.exception("journeys.advance_failed", workspace_id=str(workspace_id))
        return await _one_by_one(workspace_id)
    return done


async def _one_by_one(workspace_id: UUID) -> timers.Advanced:
    """A batch that failed, moved one enrollment a transaction: the one that fails again
    leaves the journey with the error as its reason, and the rest go on."""
    runtime = jobs.runtime()
    keys = Keys(runtime.secret)
    moved = sent = 0
    for _ in range(timers.BATCH):
        failed: tuple[repository.EnrollmentRow, str] | None = None
        async with runtime.uow(workspace_id) as uow:
            rows = await timers.claim(uow, 1)
            if not rows:
                break
            try:
                done = await timers.advance(uow, keys, rows)
                await uow.commit()
                moved, sent = moved + done.moved, sent + done.sends
            except Exception as error:  # noqa: BLE001 - recorded on the enrollment below
                if _transient(error):
                    return timers.Advanced(moved, sent)  # the next tick tries again
                failed = rows[0], f"failed: {error!r}"[:500]
        if failed is not None:
            row, reason = failed
            log.error("journeys.enrollment_failed", enrollment_id=str(row.id), reason=reason)
            async with runtime.uow(workspace_id) as uow:
                await repository.record_moves(uow, [repository.Move(
                    row.id, "EXITED", row.step, waiting=False, wake_at=None,
                    exit_reason=reason)])  # fmt: skip
                await uow.commit()
    return timers.Advanced(moved, sent)


def _transient(error: BaseException) -> bool:
    """A lock timeout, a deadlock, a dropped connection: not the enrollment's fault."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    return isinstance(cause, (psycopg.OperationalError, OSError, TimeoutError))
