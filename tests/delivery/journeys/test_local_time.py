"""Local times with a moved clock: waits until a time of day across daylight-saving changes, and
quiet hours holding a journey's message until they end."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from delivery.journeys.timing import next_time_of_day
from delivery.sending import policy as rules
from delivery.sending import throttle
from domain.clock import FrozenClock
from domain.uow import UnitOfWork
from tests.delivery.journeys.support import ACTOR, shop
from tests.delivery.sending.test_campaigns import smtp  # noqa: F401 - a fixture

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("after", "clock", "zone", "expected"),
    [
        # The night before clocks go forward in Berlin (29 March 2026): 09:00 is 07:00 UTC.
        (
            datetime(2026, 3, 28, 10, tzinfo=UTC),
            time(9),
            BERLIN,
            datetime(2026, 3, 29, 7, tzinfo=UTC),
        ),
        # A time the change skips (02:30) lands as far after the jump: 03:30 CEST.
        (
            datetime(2026, 3, 28, 23, tzinfo=UTC),
            time(2, 30),
            BERLIN,
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        ),
        # A time the change back brings twice (02:30 on 25 October): the first of the two.
        (
            datetime(2026, 10, 24, 23, tzinfo=UTC),
            time(2, 30),
            BERLIN,
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        ),
        # After the change back, 09:00 is 08:00 UTC again.
        (
            datetime(2026, 10, 25, 7, tzinfo=UTC),
            time(9),
            BERLIN,
            datetime(2026, 10, 25, 8, tzinfo=UTC),
        ),
        # Exactly at the time: the next day's.
        (datetime(2026, 6, 1, 7, tzinfo=UTC), time(9), BERLIN, datetime(2026, 6, 2, 7, tzinfo=UTC)),
    ],
)
def test_the_next_time_of_day_keeps_the_wall_clock_across_daylight_saving(
    after, clock, zone, expected
):
    assert next_time_of_day(after, clock, zone) == expected


def test_a_wait_until_nine_in_the_profiles_zone_crosses_the_clock_change(database_url):
    # Saturday 7 March 2026, 10:00 in New York; the clocks go forward that night.
    clock = FrozenClock(datetime(2026, 3, 7, 15, tzinfo=UTC))
    s = shop(database_url, {"ivy": True, "jon": True}, clock=clock, name="wait-until",
             traits={"ivy": {"timezone": "America/New_York"}, "jon": {"timezone": "Nowhere/Else"}})  # fmt: skip

    async def default_zone(uow: UnitOfWork) -> None:
        await rules.set_policy(uow, ACTOR, rules.SendPolicy(
            default_timezone="Asia/Tokyo", sending_domain_rate=throttle.MAX_RATE,
            recipient_domain_rate=throttle.MAX_RATE))  # fmt: skip

    s.uow(default_zone)
    journey = s.journey({
        "trigger": {"event": "Product Added"},
        "steps": [{"wait": {"until": "09:00"}},
                  {"send": {"templateId": str(s.template_id), "purpose": "marketing",
                            "fromEmail": "hello@shop.example"}}],
    })  # fmt: skip
    s.track("ivy", "Product Added")
    s.track("jon", "Product Added")
    s.run_inbox()
    s.run_due()
    wakes = {p: rows[0].wake_at for p, rows in s.by_person(journey).items()}
    # 09:00 on Sunday in New York is 13:00 UTC (EDT), not 14:00 (EST) as on Saturday.
    assert wakes["ivy"] == datetime(2026, 3, 8, 13, tzinfo=UTC)
    # An unknown zone falls back to the workspace's default: 09:00 in Tokyo is 00:00 UTC.
    assert wakes["jon"] == datetime(2026, 3, 8, 0, tzinfo=UTC)

    clock.set(datetime(2026, 3, 8, 12, 59, 59, tzinfo=UTC))
    assert s.run_due().sends == 1  # jon only
    clock.set(datetime(2026, 3, 8, 13, tzinfo=UTC))
    assert s.run_due().sends == 1  # ivy, on the dot


def test_quiet_hours_hold_a_journeys_message_until_they_end_in_the_recipients_zone(
    database_url,
    smtp,  # noqa: F811 - the fixture
):
    inbox, port = smtp
    # 21:30 in Berlin (CET, UTC+1), inside quiet hours 21:00-08:00.
    clock = FrozenClock(datetime(2026, 2, 10, 20, 30, tzinfo=UTC))
    s = shop(database_url, {"kim": True}, clock=clock, name="quiet",
             traits={"kim": {"timezone": "Europe/Berlin"}})  # fmt: skip

    async def quiet(uow: UnitOfWork) -> None:
        await rules.set_policy(uow, ACTOR, rules.SendPolicy(
            quiet_start="21:00", quiet_end="08:00", sending_domain_rate=throttle.MAX_RATE,
            recipient_domain_rate=throttle.MAX_RATE))  # fmt: skip

    s.uow(quiet)
    journey = s.journey({"trigger": {"event": "Product Added"},
                         "steps": [{"send": {"templateId": str(s.template_id), "purpose": "marketing",
                                             "fromEmail": "hello@shop.example"}}]})  # fmt: skip
    s.track("kim", "Product Added")
    s.run_inbox()
    s.run_due()
    s.send_all(journey, port)
    assert inbox.messages == []
    [held] = s.deliveries(journey)
    assert (held.status, held.reason) == ("QUEUED", "quiet hours in Europe/Berlin until 08:00")

    clock.set(datetime(2026, 2, 11, 6, 59, tzinfo=UTC))  # 07:59 in Berlin
    s.send_all(journey, port)
    assert inbox.messages == []
    clock.advance(timedelta(minutes=1))
    s.send_all(journey, port)
    assert [rcpt for _f, rcpt, _r in inbox.messages] == [["kim@example.org"]]
