"""A worker killed with SIGKILL mid-campaign: another one finishes it, nobody missed, few twice."""

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller

from delivery.sending import campaigns
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow
from tests.conftest import new_workspace
from tests.delivery.sending.test_campaigns import ACTOR, _campaign
from tests.support import factories
from tests.support.proxy import database_proxy, free_port
from tests.support.worker import worker_process

pytestmark = pytest.mark.slow
RECIPIENTS = 1000


class _SlowInbox:
    """A relay that takes a few milliseconds a message, so that the kill lands mid-campaign."""

    def __init__(self) -> None:
        self.recipients: list[str] = []

    async def data(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.004)
        self.recipients.extend(envelope.rcpt_tos)
        return "250 Message accepted for delivery"

    handle_DATA = data  # noqa: N815 - aiosmtpd's hook name


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class _Scene:
    """A workspace's campaign to RECIPIENTS people, a slow relay, and the worker's settings."""

    database_url: str
    workspace_id: UUID
    campaign_id: UUID
    inbox: _SlowInbox
    server: Controller
    env: dict[str, str]

    def send(self) -> None:
        async def send(uow: UnitOfWork) -> None:
            await campaigns.send(uow, ACTOR, self.campaign_id)

        in_uow(self.database_url, self.workspace_id, send)

    def status(self) -> str:
        async def read(uow: UnitOfWork) -> str:
            return (await campaigns.get(uow, self.campaign_id)).status

        return in_uow(self.database_url, self.workspace_id, read)

    def counts(self) -> dict[str, int]:
        async def read(uow: UnitOfWork) -> dict[str, int]:
            return (await campaigns.counts(uow, [self.campaign_id]))[self.campaign_id]

        return in_uow(self.database_url, self.workspace_id, read)


def _scene(database_url: str, name: str, prefix: str) -> _Scene:
    ws = new_workspace(database_url, name).workspace.id
    with factories.seeding(database_url) as db:
        for i in range(RECIPIENTS):
            pid = factories.profile(db, ws, identifiers=[("email", f"{prefix}{i}@example.org")])
            factories.consent_record(db, ws, pid)
        db.commit()
    campaign_id = _campaign(database_url, ws)
    inbox = _SlowInbox()
    port = free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    env = {"SMTP_PORT": str(port), "SEND_LEASE_SECONDS": "3", "PUBLIC_URL": "https://cdp.example"}
    return _Scene(database_url, ws, campaign_id, inbox, server, env)


def test_a_killed_worker_leaves_its_batch_to_the_next_one(database_url):
    scene = _scene(database_url, "crash", "k")
    inbox, env = scene.inbox, scene.env

    try:
        with worker_process(database_url, extra_env=env) as first:
            scene.send()
            _wait(lambda: sum(r.startswith("k") for r in inbox.recipients) >= 150, 60,
                  "the first messages")  # fmt: skip
            first.kill()
        before = sum(r.startswith("k") for r in inbox.recipients)
        assert before < RECIPIENTS, "the campaign ended before the kill"
        with worker_process(database_url, extra_env=env):
            _wait(lambda: scene.status() == "SENT", 120, "the campaign to finish")
    finally:
        scene.server.stop()

    # The worker sends every workspace's due campaigns: count this test's recipients only.
    received = [r for r in inbox.recipients if r.startswith("k")]
    assert set(received) == {f"k{i}@example.org" for i in range(RECIPIENTS)}
    # At most the message each running batch had in flight goes out twice: far less than
    # the one batch that Done-when allows.
    duplicates = len(received) - RECIPIENTS
    assert 0 <= duplicates <= campaigns.PARALLEL_BATCHES

    assert scene.counts() == {"SENT": RECIPIENTS}


def test_a_database_that_goes_away_mid_campaign_is_waited_for_and_nothing_is_lost(database_url):
    """Every connection to PostgreSQL cut for a few seconds, as a restart does."""
    scene = _scene(database_url, "outage", "o")
    inbox, env = scene.inbox, scene.env
    proxy, through_proxy = database_proxy(database_url)
    proxy.start()

    def ours() -> list[str]:
        return [r for r in inbox.recipients if r.startswith("o")]

    try:
        with worker_process(through_proxy, extra_env=env):
            scene.send()
            _wait(lambda: len(ours()) >= 150, 60, "the first messages")
            proxy.stop()  # every connection drops, and none can be made
            during = len(ours())
            time.sleep(3)
            assert len(ours()) - during <= campaigns.PARALLEL_BATCHES, "sent with no database"
            assert scene.status() == "SENDING"
            proxy.start()
            _wait(lambda: scene.status() == "SENT", 180, "the campaign to finish")
    finally:
        proxy.close()
        scene.server.stop()

    received = ours()
    assert set(received) == {f"o{i}@example.org" for i in range(RECIPIENTS)}
    # Only a message whose outcome the database never heard of goes out again.
    assert 0 <= len(received) - RECIPIENTS <= campaigns.PARALLEL_BATCHES

    assert scene.counts() == {"SENT": RECIPIENTS}
