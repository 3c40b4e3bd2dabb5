"""The send policy: the frequency cap skips, quiet hours wait, transactional mail keeps neither."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from delivery.sending import campaigns, pipeline, relay
from delivery.sending import policy as rules
from domain.clock import FrozenClock
from domain.db import create_engine, session_factory
from domain.errors import ValidationError
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow, recompute_pending
from tests.conftest import new_workspace
from tests.delivery.sending.test_campaigns import ACTOR, _campaign, smtp  # noqa: F401 - the fixture
from tests.support import factories
from tests.support.database import APP_ROLE, SECRET

BERLIN = ZoneInfo("Europe/Berlin")


def test_quiet_hours_that_wrap_past_midnight_end_at_their_end_in_the_recipients_zone():
    policy = rules.SendPolicy(quiet_start="21:00", quiet_end="08:00")
    night = datetime(2026, 12, 2, 22, 30, tzinfo=BERLIN).astimezone(UTC)
    assert rules.quiet_until(policy, night, BERLIN) == datetime(2026, 12, 3, 8, 0, tzinfo=BERLIN)
    early = datetime(2026, 12, 3, 6, 0, tzinfo=BERLIN).astimezone(UTC)
    assert rules.quiet_until(policy, early, BERLIN) == datetime(2026, 12, 3, 8, 0, tzinfo=BERLIN)
    day = datetime(2026, 12, 3, 12, 0, tzinfo=BERLIN).astimezone(UTC)
    assert rules.quiet_until(policy, day, BERLIN) is None
    lunch = rules.SendPolicy(quiet_start="12:00", quiet_end="13:00")
    assert rules.quiet_until(lunch, day, BERLIN) == datetime(2026, 12, 3, 13, 0, tzinfo=BERLIN)
    assert rules.zone("Not/AZone", "Europe/Berlin") == BERLIN
    assert rules.zone(None, "UTC") == ZoneInfo("UTC")


def test_a_wall_clock_time_is_that_time_in_each_zone():
    nine = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    assert rules.local_due(nine, BERLIN) == datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    assert rules.local_due(nine, ZoneInfo("America/New_York")) == datetime(
        2026, 12, 3, 14, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (rules.SendPolicy(frequency_cap=2), "frequencyCap"),
        (rules.SendPolicy(frequency_cap=0, frequency_hours=24), "frequencyCap"),
        (rules.SendPolicy(frequency_cap=2, frequency_hours=0), "frequencyHours"),
        (rules.SendPolicy(quiet_start="21:00"), "quietHoursStart"),
        (rules.SendPolicy(quiet_start="25:00", quiet_end="08:00"), "quietHoursStart"),
        (rules.SendPolicy(default_timezone="Mars/Olympus"), "defaultTimezone"),
    ],
)
def test_a_bad_policy_is_refused_with_its_field(policy, field):
    with pytest.raises(ValidationError) as caught:
        rules.check(policy)
    assert caught.value.field == field


def _people(database_url: str, ws: UUID, zones: list[str | None]) -> list[UUID]:
    found = []
    with factories.seeding(database_url) as db:
        for i, tz in enumerate(zones):
            traits = {"timezone": tz} if tz else {}
            pid = factories.profile(
                db, ws, traits=traits, identifiers=[("email", f"q{i}@example.org")]
            )
            factories.consent_record(db, ws, pid, recorded_at=datetime(2026, 1, 1, tzinfo=UTC))
            found.append(pid)
        db.commit()
    return found


def _with_clock(database_url: str, ws: UUID, clock: FrozenClock,
                work: Callable[[Callable[[], UnitOfWork]], Any]) -> Any:  # fmt: skip
    async def main() -> Any:
        engine = create_engine(database_url, role=APP_ROLE, pool_size=2)
        sessions = session_factory(engine)
        try:
            return await work(lambda: UnitOfWork(sessions, workspace_id=ws, clock=clock))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _drain(units: Callable[[], UnitOfWork], sending: pipeline.Sending, campaign_id: UUID) -> Any:
    async def run() -> dict[str, int]:
        total: dict[str, int] = {}
        while tally := await pipeline.send_batch(units, sending, campaign_id):
            for key, n in tally.items():
                total[key] = total.get(key, 0) + n
        return total

    return run()


def test_quiet_hours_wait_and_the_cap_skips_but_transactional_mail_keeps_neither(
    database_url,
    smtp,  # noqa: F811 - the fixture
):
    inbox, port = smtp
    ws = new_workspace(database_url, "policy").workspace.id
    night = datetime(2026, 12, 2, 23, 0, tzinfo=BERLIN)
    clock = FrozenClock(night)
    _people(database_url, ws, [None, None, "America/New_York"])
    newsletter = _campaign(database_url, ws)

    async def setup(uow: UnitOfWork) -> None:
        await rules.set_policy(
            uow, ACTOR, rules.SendPolicy(1, 24, "21:00", "08:00", "Europe/Berlin")
        )

    in_uow(database_url, ws, setup)
    recompute_pending(database_url, ws)
    sending = pipeline.Sending(
        SECRET, "https://cdp.example", relay.Pool(relay.RelaySettings("127.0.0.1", port))
    )

    async def first_night(units: Callable[[], UnitOfWork]) -> dict[str, int]:
        async with units() as uow:
            await campaigns.send(uow, ACTOR, newsletter)
            await campaigns.start(uow, newsletter)
            await uow.commit()
        return await _drain(units, sending, newsletter)

    # 23:00 in Berlin: the two Berlin recipients wait; New York (17:00) gets it now.
    assert _with_clock(database_url, ws, clock, first_night) == {"SENT": 1, "QUEUED": 2}
    assert [to for _, [to], _ in inbox.messages] == ["q2@example.org"]

    clock.set(datetime(2026, 12, 3, 8, 1, tzinfo=BERLIN))
    assert _with_clock(
        database_url, ws, clock, lambda units: _drain(units, sending, newsletter)
    ) == {"SENT": 2}

    async def second(units: Callable[[], UnitOfWork], purpose: str, name: str) -> dict[str, int]:
        async with units() as uow:
            first = await campaigns.get(uow, newsletter)
            again = await campaigns.create(uow, ACTOR, campaigns.CampaignInput(
                name, first.segment_id, first.template_id, purpose, "news@shop.example"))  # fmt: skip
            await campaigns.send(uow, ACTOR, again.id)
            await campaigns.start(uow, again.id)
            await uow.commit()
        return await _drain(units, sending, again.id)

    # Within 24 hours of the first: the cap (1 in 24 h) skips every marketing message
    # (15:00 in Berlin is 09:00 in New York: nobody is in quiet hours)...
    clock.set(datetime(2026, 12, 3, 15, 0, tzinfo=BERLIN))
    assert _with_clock(database_url, ws, clock, lambda u: second(u, "newsletter", "again")) == {
        "SKIPPED": 3
    }
    # ...but not a transactional one, which keeps neither the cap nor quiet hours.
    clock.set(datetime(2026, 12, 3, 23, 30, tzinfo=BERLIN))
    assert _with_clock(
        database_url, ws, clock, lambda u: second(u, "transactional", "receipt")
    ) == {"SENT": 3}
    # A day after the first marketing messages the cap lets them through again; the receipt
    # does not count (16:00 in Berlin, 10:00 in New York).
    clock.set(datetime(2026, 12, 4, 16, 0, tzinfo=BERLIN))
    assert _with_clock(database_url, ws, clock, lambda u: second(u, "newsletter", "later")) == {
        "SENT": 3
    }
    asyncio.run(sending.pool.close())
