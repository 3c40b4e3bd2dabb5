"""Sending jobs: start a campaign (the snapshot), and send its batches."""

from datetime import timedelta
from uuid import UUID

import dramatiq
import structlog

from delivery.sending import campaigns, pipeline, relay
from domain import broker as _broker  # noqa: F401 - binds actors to a broker before declaring
from domain import jobs

log = structlog.get_logger(__name__)
RETRIES, BACKOFF_MS = 10, 2000

_sending: pipeline.Sending | None = None


def configure(
    *,
    base_url: str,
    relay_settings: relay.RelaySettings,
    lease: timedelta = pipeline.LEASE,
    link_lifetime: timedelta = timedelta(days=365),
) -> None:
    """Set, once per worker process, where links point and which relay mail leaves through."""
    global _sending  # noqa: PLW0603 - one per worker process
    _sending = pipeline.Sending(jobs.runtime().secret, base_url, relay.Pool(relay_settings), lease,
                                link_lifetime=link_lifetime)  # fmt: skip


def sending() -> pipeline.Sending:
    if _sending is None:
        raise RuntimeError("sending is not configured; start workers with `cdp worker`")
    return _sending


@dramatiq.actor(actor_name=campaigns.START_ACTOR, queue_name=campaigns.QUEUE,
                max_retries=RETRIES, min_backoff=BACKOFF_MS)  # fmt: skip
async def start_campaign(workspace_id: str, campaign_id: str) -> None:
    runtime = jobs.runtime()
    async with runtime.uow(UUID(workspace_id)) as uow:
        count = await campaigns.start(uow, UUID(campaign_id))
        await uow.commit()
    log.info("campaign.started", campaign_id=campaign_id, recipients=count)


@dramatiq.actor(actor_name=campaigns.BATCH_ACTOR, queue_name=campaigns.QUEUE,
                max_retries=RETRIES, min_backoff=BACKOFF_MS)  # fmt: skip
async def send_batch(workspace_id: str, campaign_id: str) -> None:
    runtime = jobs.runtime()
    tally = await pipeline.send_batch(
        lambda: runtime.uow(UUID(workspace_id)), sending(), UUID(campaign_id)
    )
    if tally:
        log.info("campaign.batch", campaign_id=campaign_id, **tally)


@dramatiq.actor(actor_name="campaign_sweep", queue_name=campaigns.QUEUE, max_retries=0)
async def campaign_sweep() -> None:
    """Queue a batch for each campaign with deliveries due that no worker holds: the jobs of a
    killed worker are lost with it, its leases are not."""
    runtime = jobs.runtime()
    async with runtime.uow() as uow:
        rows = await uow.fetch("SELECT workspace_id, campaign_id FROM cdp_sending_work()", {})
    for row in rows:
        send_batch.send(str(row.workspace_id), str(row.campaign_id))
