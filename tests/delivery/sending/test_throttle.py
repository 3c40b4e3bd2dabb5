"""Throttling (a recipient domain's and a sending domain's messages a second) and a relay that is
down, with a moved clock."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller

from delivery.sending import campaigns, pipeline, relay
from delivery.sending import policy as rules
from domain.clock import FrozenClock
from domain.errors import ValidationError
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow, recompute_pending
from tests.conftest import new_workspace
from tests.delivery.sending.test_campaigns import ACTOR, _campaign, _Inbox, smtp  # noqa: F401 - the fixture
from tests.delivery.sending.test_policy import _drain, _with_clock
from tests.support import factories
from tests.support.database import SECRET
from tests.support.proxy import free_port

START = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _recipients(database_url: str, ws: UUID, addresses: list[str]) -> None:
    with factories.seeding(database_url) as db:
        for address in addresses:
            pid = factories.profile(db, ws, identifiers=[("email", address)])
            factories.consent_record(db, ws, pid, recorded_at=datetime(2026, 1, 1, tzinfo=UTC))
        db.commit()


def _throttled_campaign(database_url: str, ws: UUID, policy: rules.SendPolicy) -> UUID:
    campaign_id = _campaign(database_url, ws)

    async def setup(uow: UnitOfWork) -> None:
        await rules.set_policy(uow, ACTOR, policy)

    in_uow(database_url, ws, setup)
    recompute_pending(database_url, ws)
    return campaign_id


def _deliveries(database_url: str, ws: UUID, campaign_id: UUID) -> list[Any]:
    async def read(uow: UnitOfWork) -> list[Any]:
        return await uow.fetch(
            "SELECT status, reason, due_at, attempts FROM deliveries WHERE campaign_id = %(c)s "
            "ORDER BY due_at",
            {"c": campaign_id},
        )

    return in_uow(database_url, ws, read)


def _sender(port: int, campaign_id: UUID) -> tuple[pipeline.Sending, Any]:
    """What sends to the relay at `port`, and the work that starts the campaign and drains it."""
    sending = pipeline.Sending(SECRET, "https://cdp.example",
                               relay.Pool(relay.RelaySettings("127.0.0.1", port)))  # fmt: skip

    async def start(units: Any) -> dict[str, int]:
        async with units() as uow:
            await campaigns.send(uow, ACTOR, campaign_id)
            await campaigns.start(uow, campaign_id)
            await uow.commit()
        return await _drain(units, sending, campaign_id)

    return sending, start


def _drain_at(database_url: str, ws: UUID, clock: FrozenClock, sending: pipeline.Sending,
              campaign_id: UUID, *, at: datetime) -> Any:  # fmt: skip
    """What the campaign's batches send once the clock reads `at`."""
    clock.set(at)
    return _with_clock(database_url, ws, clock, lambda u: _drain(u, sending, campaign_id))


def test_a_recipient_domain_gets_its_rate_and_the_rest_waits_for_its_tokens(database_url, smtp):  # noqa: F811
    inbox, port = smtp
    ws = new_workspace(database_url, "throttle").workspace.id
    _recipients(database_url, ws, [f"a{i}@a.example" for i in range(6)] +
                [f"b{i}@b.example" for i in range(4)])  # fmt: skip
    # Two a second to each recipient domain: a bucket holds two seconds of it, four messages.
    campaign_id = _throttled_campaign(
        database_url, ws, rules.SendPolicy(sending_domain_rate=100, recipient_domain_rate=2)
    )
    clock = FrozenClock(START)
    sending, start = _sender(port, campaign_id)

    assert _with_clock(database_url, ws, clock, start) == {"SENT": 8, "THROTTLED": 2}
    received = sorted(to for _, [to], _ in inbox.messages)
    assert [to.partition("@")[2] for to in received].count("a.example") == 4
    assert [to.partition("@")[2] for to in received].count("b.example") == 4
    waiting = [row for row in _deliveries(database_url, ws, campaign_id) if row.status == "QUEUED"]
    assert [row.due_at for row in waiting] == [START + timedelta(seconds=0.5),
                                               START + timedelta(seconds=1)]  # fmt: skip
    assert {row.reason for row in waiting} == {
        "throttled: at most 2 messages a second to a.example"
    }
    assert {row.attempts for row in waiting} == {0}  # a wait for a token is not an attempt

    # Half a second later one token is back; a second later, both.
    moments = [START + timedelta(seconds=s) for s in (0.5, 1)]
    later = [_drain_at(database_url, ws, clock, sending, campaign_id, at=t) for t in moments]
    assert later == [{"SENT": 1}, {"SENT": 1}]
    assert len(inbox.messages) == 10
    assert {row.status for row in _deliveries(database_url, ws, campaign_id)} == {"SENT"}


def test_a_sending_domain_at_its_rate_claims_only_what_it_may_send(database_url, smtp):  # noqa: F811
    inbox, port = smtp
    ws = new_workspace(database_url, "throttle-from").workspace.id
    _recipients(database_url, ws, [f"p{i}@example.org" for i in range(10)])
    campaign_id = _throttled_campaign(
        database_url, ws, rules.SendPolicy(sending_domain_rate=3, recipient_domain_rate=100)
    )
    clock = FrozenClock(START)
    sending, start = _sender(port, campaign_id)

    # A bucket of two seconds at three a second: six now, none claimed beyond them.
    assert _with_clock(database_url, ws, clock, start) == {"SENT": 6}
    assert [row.status for row in _deliveries(database_url, ws, campaign_id)].count("QUEUED") == 4
    moments = [START + timedelta(seconds=s) for s in (1, 10)]
    later = [_drain_at(database_url, ws, clock, sending, campaign_id, at=t) for t in moments]
    assert later == [{"SENT": 3}, {"SENT": 1}]
    assert len(inbox.messages) == 10


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (rules.SendPolicy(sending_domain_rate=0), "sendingDomainRate"),
        (rules.SendPolicy(recipient_domain_rate=-1), "recipientDomainRate"),
        (rules.SendPolicy(recipient_domain_rate=10**7), "recipientDomainRate"),
    ],
)
def test_a_rate_out_of_bounds_is_refused(policy, field):
    with pytest.raises(ValidationError) as caught:
        rules.check(policy)
    assert caught.value.field == field


def test_a_relay_that_is_down_defers_every_message_and_they_go_once_it_is_back(database_url):
    ws = new_workspace(database_url, "relay-down").workspace.id
    _recipients(database_url, ws, [f"d{i}@example.org" for i in range(5)])
    campaign_id = _throttled_campaign(
        database_url, ws, rules.SendPolicy(sending_domain_rate=100, recipient_domain_rate=100)
    )
    port = free_port()  # nothing listens here yet
    clock = FrozenClock(START)
    sending, start = _sender(port, campaign_id)

    assert _with_clock(database_url, ws, clock, start) == {"DEFERRED": 5}
    rows = _deliveries(database_url, ws, campaign_id)
    assert {row.status for row in rows} == {"DEFERRED"}  # nothing marked sent
    assert all("could not be reached" in row.reason for row in rows)
    assert {row.due_at for row in rows} == {START + pipeline.RETRY_BASE}

    inbox = _Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        later = START + pipeline.RETRY_BASE
        assert _drain_at(database_url, ws, clock, sending, campaign_id, at=later) == {"SENT": 5}
    finally:
        server.stop()
    assert sorted(to for _, [to], _ in inbox.messages) == [f"d{i}@example.org" for i in range(5)]
