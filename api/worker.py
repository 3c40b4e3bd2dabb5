"""The Dramatiq entry module (`dramatiq api.worker`), started by `cdp worker`.

It installs the broker from BROKER_URL, keeps failed jobs, configures what
actors need, runs the outbox relay periodically to catch up after crashes
or broker outages, and imports every context's actors.
"""

import asyncio
import concurrent.futures
import gc
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dramatiq
import structlog
from dramatiq.asyncio import get_event_loop_thread

import api.contexts  # noqa: F401 - registrations the actors rely on
import cdp.actors
import cdp.segments.actors
import consent.dsr.actors  # noqa: F401 - declares its actors
import delivery.deliverability.actors
import delivery.journeys.actors
import delivery.sending.actors
import delivery.tracking.actors
import domain.maintenance
from api import embedded
from api.logging import configure as configure_logging
from api.settings import get_settings
from domain import broker as brokers
from domain import jobs
from domain.db import with_role
from domain.failures import RecordFailedJobs

log = structlog.get_logger("cdp.worker")

MAINTENANCE_INTERVAL = 3600.0
# Time-window segments move at least this often (and queued upkeep is caught up).
SEGMENT_SWEEP_INTERVAL = 60.0
# Campaigns still sending are judged by the reputation guard at least this often.
REPUTATION_SWEEP_INTERVAL = 60.0
# Due journey enrollments are looked for this often: a wait ends at most
# about this late when workers are free.
JOURNEY_TICK_INTERVAL = 1.0
# Sending outcomes become profile events, and counters are rolled up, this often
# (opens and clicks queue a job of their own as they are stored).
TRACKING_SWEEP_INTERVAL = 5.0


class PeriodicTasks(dramatiq.Middleware):
    """Relays the outbox every few seconds and schedules maintenance hourly."""

    def __init__(
        self,
        relay_interval: float,
        maintenance_interval: float,
        retention_days: int,
        sending_sweep_interval: float,
    ) -> None:
        self._retention_days = retention_days
        self._sending_sweep_interval = sending_sweep_interval
        self._relay_interval = relay_interval
        self._maintenance_interval = maintenance_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._relay: concurrent.futures.Future[None] | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="cdp-periodic", daemon=True)
        self._thread.start()
        # The jobs a worker's own commits queue (a campaign's next batch, a journey's
        # message, a segment change to follow) go to the broker when they commit, as
        # the API's do, not at the next periodic pass (bench/README.md, "Journeys").
        loop = get_event_loop_thread()
        if loop is not None:
            self._relay = asyncio.run_coroutine_threadsafe(
                jobs.runtime().outbox_relay().run(interval=None), loop.loop
            )

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()
        if self._relay is not None:
            self._relay.cancel()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _maintenance(self) -> None:
        domain.maintenance.purge_outbox.send()
        delivery.deliverability.actors.deliverability_upkeep.send()
        delivery.tracking.actors.prune_hits.send()
        cdp.actors.enforce_workspace_retention.send()
        if self._retention_days:
            cdp.actors.enforce_event_retention.send(self._retention_days)

    def _loop(self) -> None:
        # (seconds between, what to schedule, its name in the logs); each is due at once.
        tasks: list[tuple[float, Callable[[], object], str]] = [
            (JOURNEY_TICK_INTERVAL, delivery.journeys.actors.journey_tick.send, "journeys.tick"),
            (SEGMENT_SWEEP_INTERVAL, cdp.segments.actors.segment_sweep.send, "segments.sweep"),
            (TRACKING_SWEEP_INTERVAL, delivery.tracking.actors.tracking_sweep.send,
             "tracking.sweep"),
            (REPUTATION_SWEEP_INTERVAL, delivery.deliverability.actors.reputation_sweep.send,
             "reputation.sweep"),
            (self._sending_sweep_interval, delivery.sending.actors.campaign_sweep.send,
             "sending.sweep"),
            (self._maintenance_interval, self._maintenance, "maintenance"),
        ]  # fmt: skip
        due = [time.monotonic()] * len(tasks)
        relay_due = time.monotonic() + self._relay_interval
        while not self._stop.wait(min(self._relay_interval, JOURNEY_TICK_INTERVAL)):
            loop = get_event_loop_thread()
            if loop is None:
                continue
            if time.monotonic() >= relay_due:
                relay_due = time.monotonic() + self._relay_interval
                try:
                    loop.run_coroutine(jobs.runtime().outbox_relay().relay_pending())
                except Exception as exc:  # noqa: BLE001 - keep relaying through outages
                    log.warning("outbox.relay_failed", error=repr(exc))
            for n, (interval, schedule, name) in enumerate(tasks):
                if time.monotonic() < due[n]:
                    continue
                due[n] = time.monotonic() + interval
                try:
                    schedule()
                except Exception as exc:  # noqa: BLE001 - the next round tries again
                    log.warning("periodic.schedule_failed", task=name, error=repr(exc))


def _fast_event_loop() -> None:
    """The actors' event loop is uvloop's where it is installed: a sending worker waits on its
    relay and its database for every message, and uvloop's wake-ups cost less CPU than the
    standard loop's (bench/README.md, "Sending")."""
    try:
        import uvloop  # noqa: PLC0415 - not on every platform
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def setup() -> dramatiq.Broker:
    settings = get_settings()
    configure_logging(settings.log_level, settings.json_logs)
    _fast_event_loop()
    database_url = embedded.database_url(settings)
    role = settings.app_db_role or None
    broker = brokers.install(
        brokers.make_broker(settings.broker_url, database_url=database_url, role=role)
    )
    broker.add_middleware(RecordFailedJobs(with_role(database_url, role)))
    broker.add_middleware(
        PeriodicTasks(
            settings.outbox_relay_interval,
            MAINTENANCE_INTERVAL,
            settings.event_retention_days,
            float(settings.send_lease_seconds),
        )
    )
    jobs.configure(database_url=database_url, role=role, broker=broker, secret=settings.secret())
    delivery.deliverability.actors.configure(
        delivery.deliverability.actors.UpkeepSettings(
            settings.sending_dns(),
            settings.dns_checks(),
            timedelta(days=settings.inbound_retention_days),
        )
    )
    delivery.sending.actors.configure(
        base_url=settings.base_url,
        relay_settings=settings.relay(),
        lease=timedelta(seconds=settings.send_lease_seconds),
        link_lifetime=timedelta(days=settings.tracking_link_days),
    )
    delivery.tracking.actors.configure(settings.tracking_rules())
    delivery.tracking.conversions.configure(settings.attribution_days)
    return broker


broker = setup()
# Everything imported and set up by now lives as long as the process: out of the collector's
# sight, a full collection no longer walks it (bench/README.md, "Sending").
gc.freeze()
