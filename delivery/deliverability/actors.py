"""Deliverability jobs: process a workspace's stored reports, and daily upkeep.

The upkeep re-checks the DNS of every sending domain not checked for a day,
empties the raw bytes of reports past their retention, and forgets soft
bounces older than their counting window.
"""

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import dramatiq
import psycopg
import structlog
from sqlalchemy.exc import DBAPIError

from consent import audit
from consent.keys import Keys
from delivery.deliverability import guard, processing, repository, verification
from delivery.sending import domains
from domain import broker as _broker  # noqa: F401 - binds actors to a broker before declaring
from domain import jobs

log = structlog.get_logger(__name__)
RETRIES, BACKOFF_MS = 10, 1000
# After a batch smaller than a full one, wait this long before the next claim,
# so that a steady stream of reports is taken in batches, not one by one: a
# batch's statements cost about the same for 10 reports as for 200
# (bench/README.md, "Bounces").
GATHER_SECONDS = 0.1
RECHECK_EVERY = timedelta(days=1)
STALE_AFTER = timedelta(minutes=10)


def _passing(exc: BaseException) -> bool:
    """A lock timeout, a deadlock, a dropped connection: the job is tried again later.

    A report is marked FAILED only for an error of its own (one its data
    causes), which trying again would meet again.
    """
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return isinstance(cause, (psycopg.OperationalError, OSError, TimeoutError))


UPKEEP_ACTOR = audit.Actor.system("dns-recheck")


@dataclass(frozen=True)
class UpkeepSettings:
    dns: domains.DnsSettings
    resolver: verification.Resolver
    raw_retention: timedelta


_upkeep: UpkeepSettings | None = None


def configure(settings: UpkeepSettings) -> None:
    """Set, once per worker process, what the daily upkeep checks against."""
    global _upkeep  # noqa: PLW0603 - one per worker process
    _upkeep = settings


@dramatiq.actor(actor_name=repository.PROCESS_ACTOR, queue_name=repository.QUEUE,
                max_retries=RETRIES, min_backoff=BACKOFF_MS)  # fmt: skip
async def process_inbound(workspace_id: str) -> None:
    count = await run_processing(UUID(workspace_id))
    if count:
        log.info("inbound.processed", workspace_id=workspace_id, reports=count)


async def run_processing(workspace_id: UUID) -> int:
    """Process every stored report of the workspace, a batch per transaction; how many."""
    runtime = jobs.runtime()
    keys = Keys(runtime.secret)
    # The request goes first: a report stored from now on queues a new job.
    async with runtime.uow(workspace_id) as uow:
        await repository.take_request(uow)
        await uow.commit()
    total, gather = 0, False
    while True:
        if gather:
            await asyncio.sleep(GATHER_SECONDS)
        async with runtime.uow(workspace_id) as uow:
            rows = await repository.claim(uow, processing.BATCH)
            if not rows:
                return total
            try:
                await processing.process(uow, keys, runtime.secret, rows)
                await uow.commit()
            except Exception as exc:
                if _passing(exc):
                    raise
                log.exception("inbound.batch_failed", workspace_id=str(workspace_id))
                await uow.rollback()
                await _one_by_one(workspace_id, keys, runtime.secret, [r.id for r in rows])
        total += len(rows)
        gather = len(rows) < processing.BATCH


async def _one_by_one(workspace_id: UUID, keys: Keys, secret: str, ids: list[UUID]) -> None:
    """After a batch failed: each report alone, and the one that fails again is marked FAILED."""
    runtime = jobs.runtime()
    for report_id in ids:
        async with runtime.uow(workspace_id) as uow:
            rows = await repository.claim_one(uow, report_id)
            if not rows:
                continue
            try:
                await processing.process(uow, keys, secret, rows)
                await uow.commit()
                continue
            except Exception as exc:
                if _passing(exc):
                    raise
                log.exception("inbound.report_failed", report_id=str(report_id))
                await uow.rollback()
                error = f"{type(exc).__name__}: {exc}"[:500]
        async with runtime.uow(workspace_id) as uow:
            await repository.mark_failed(uow, report_id, error, uow.clock.now())
            await uow.commit()


@dramatiq.actor(actor_name="deliverability_upkeep", queue_name=repository.QUEUE, max_retries=0)
async def deliverability_upkeep() -> None:
    if _upkeep is None:
        raise RuntimeError("deliverability is not configured; start workers with `cdp worker`")
    await run_upkeep(_upkeep)


async def run_upkeep(settings: UpkeepSettings) -> None:
    """Re-check the domains due, and apply the retention of reports, in every workspace."""
    runtime = jobs.runtime()
    now = runtime.clock.now()
    async with runtime.uow() as uow:
        due = await repository.domains_to_check(uow, now - RECHECK_EVERY)
        workspaces = await repository.sending_workspaces(uow)
    for workspace_id, domain_id in due:
        # One domain's failure must not hold up the others' checks.
        try:
            async with runtime.uow(workspace_id) as uow:
                await verification.verify(uow, UPKEEP_ACTOR, domain_id, settings.dns,
                                          settings.resolver)  # fmt: skip
                await uow.commit()
        except Exception:  # logged; the next round tries again
            log.exception("deliverability.recheck_failed", domain_id=str(domain_id))
    for workspace_id in workspaces:
        async with runtime.uow(workspace_id) as uow:
            stale = await repository.waiting_since(uow, now - STALE_AFTER)
        if stale:
            # Its job was lost (a broker outage, retries spent): process here.
            log.warning("inbound.stale_reports", workspace_id=str(workspace_id))
            await run_processing(workspace_id)
        async with runtime.uow(workspace_id) as uow:
            await repository.forget_raw(uow, now - settings.raw_retention)
            await repository.purge_soft_bounces(uow, (now - processing.SOFT_BOUNCE_WINDOW).date())
            await uow.commit()


@dramatiq.actor(actor_name="reputation_sweep", queue_name=repository.QUEUE, max_retries=0)
async def reputation_sweep() -> None:
    await run_reputation_sweep()


async def run_reputation_sweep() -> list[UUID]:
    """Judge every campaign still sending, whether or not a report came for it; those paused.

    The guard also runs with each batch of reports, but a campaign's rate
    moves with its sends too: complaints that came early are judged again
    once enough messages have gone out.
    """
    runtime = jobs.runtime()
    async with runtime.uow() as uow:
        sending = await repository.campaigns_sending(uow)
    paused: list[UUID] = []
    for workspace_id, campaign_id in sending:
        async with runtime.uow(workspace_id) as uow:
            paused += await guard.check(uow, [campaign_id])
            await uow.commit()
    return paused
