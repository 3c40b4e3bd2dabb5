"""Entries that are not events: a segment's entries, a date each year, days without events."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cdp.segments import actors as segment_actors
from cdp.segments import services as segment_services
from delivery.journeys.timing import next_anniversary
from domain.clock import FrozenClock
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow, recompute_pending, run_upkeep
from tests.delivery.journeys.support import ACTOR, shop
from tests.support.jobs import as_worker


def _send(template_id: Any) -> dict[str, Any]:
    return {"send": {"templateId": str(template_id), "purpose": "marketing",
                     "fromEmail": "hello@shop.example"}}  # fmt: skip


def _change_ids(s: Any) -> list[Any]:
    async def read(uow: UnitOfWork) -> list[Any]:
        rows = await uow.fetch("SELECT DISTINCT change_id FROM segment_membership_history "
                               "WHERE workspace_id = %(ws)s", {"ws": uow.workspace_id})  # fmt: skip
        return [r.change_id for r in rows]

    return s.uow(read)  # type: ignore[no-any-return]


def _schedules(s: Any) -> dict[Any, datetime]:
    async def read(uow: UnitOfWork) -> dict[Any, datetime]:
        rows = await uow.fetch("SELECT profile_id, due_at FROM journey_schedules "
                               "WHERE workspace_id = %(ws)s", {"ws": uow.workspace_id})  # fmt: skip
        return {r.profile_id: r.due_at for r in rows}

    return s.uow(read)  # type: ignore[no-any-return]


def test_entering_a_segment_enrols_once_per_change_followed(database_url):
    s = shop(database_url, {"pia": True, "rob": True}, name="segment-trigger")

    async def segment(uow: UnitOfWork) -> Any:
        return await segment_services.create(uow, ACTOR, segment_services.SegmentInput(
            "pro", None, {"trait": "plan", "op": "eq", "value": "pro"}))  # fmt: skip

    pro = in_uow(database_url, s.workspace_id, segment)
    recompute_pending(database_url, s.workspace_id)
    journey = s.journey(
        {"trigger": {"segmentEntered": str(pro.id)}, "steps": [_send(s.template_id)]}
    )
    s.identify("pia", {"plan": "pro"})
    run_upkeep(database_url, s.workspace_id)
    [change] = _change_ids(s)
    for _ in range(2):  # a change followed twice (a retried job) enrols once
        as_worker(database_url, lambda: segment_actors.follow(s.workspace_id, change))
    people = s.by_person(journey)
    assert list(people) == ["pia"]
    assert [r.event["name"] for r in people["pia"]] == ["Segment Entered"]


@pytest.mark.parametrize(
    ("value", "at", "zone", "after"),
    [
        ("1990-03-05", time(9), "Europe/Berlin", datetime(2026, 3, 4, 12, tzinfo=UTC)),
        ("1990-03-05", time(9), "Europe/Berlin", datetime(2026, 3, 5, 8, 0, 1, tzinfo=UTC)),
        ("1992-02-29", time(9), "America/New_York", datetime(2026, 1, 1, tzinfo=UTC)),
        ("1992-02-29", time(9), "America/New_York", datetime(2027, 12, 1, tzinfo=UTC)),
        ("1980-03-08", time(2, 30), "America/New_York", datetime(2026, 3, 1, tzinfo=UTC)),
        ("1980-11-01", time(1, 30), "America/New_York", datetime(2026, 10, 1, tzinfo=UTC)),
        (
            "1985-12-31T23:00:00Z",
            time(23, 59),
            "Pacific/Kiritimati",
            datetime(2026, 6, 1, tzinfo=UTC),
        ),
    ],
)
def test_the_database_and_python_agree_on_the_next_anniversary(
    database_url, workspace, *, value, at, zone, after
):
    async def ask(uow: UnitOfWork) -> datetime:
        [row] = await uow.fetch("SELECT cdp_next_anniversary(%(v)s, %(at)s, %(z)s, %(after)s) AS n",
                                {"v": value, "at": at, "z": zone, "after": after})  # fmt: skip
        return row.n  # type: ignore[no-any-return]

    found = in_uow(database_url, workspace.workspace.id, ask)
    when = datetime.fromisoformat(value[:10]).date()
    assert found == next_anniversary(after, when, at, ZoneInfo(zone))


def test_a_birthday_enters_at_nine_local_each_year_and_a_trait_change_moves_it(database_url):
    clock = FrozenClock(datetime(2026, 3, 4, 12, tzinfo=UTC))
    s = shop(database_url, {"uma": True, "vic": True, "wyn": True}, clock=clock, name="birthday",
             traits={"uma": {"birthday": "1990-03-05", "timezone": "Europe/Berlin"},
                     "vic": {"birthday": "1990-03-30", "timezone": "Europe/Berlin"},
                     "wyn": {"birthday": "not a date"}})  # fmt: skip
    journey = s.journey({"trigger": {"dateTrait": "birthday", "annual": True, "at": "09:00"},
                         "reentry": "always", "steps": [_send(s.template_id)]})  # fmt: skip
    due = _schedules(s)
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC after the clocks go forward.
    assert due == {s.people["uma"]: datetime(2026, 3, 5, 8, tzinfo=UTC),
                   s.people["vic"]: datetime(2026, 3, 30, 7, tzinfo=UTC)}  # fmt: skip

    clock.set(datetime(2026, 3, 5, 7, 59, tzinfo=UTC))
    s.run_due()
    assert s.by_person(journey) == {}
    clock.set(datetime(2026, 3, 5, 8, 0, 30, tzinfo=UTC))
    assert s.run_due().sends == 1
    [uma] = s.by_person(journey)["uma"]
    assert (uma.event["name"], uma.trigger_at) == (
        "Anniversary",
        datetime(2026, 3, 5, 8, tzinfo=UTC),
    )
    assert _schedules(s)[s.people["uma"]] == datetime(2027, 3, 5, 8, tzinfo=UTC)
    assert s.run_due().moved == 0, "once a year"


def test_a_changed_birthday_moves_the_schedule_and_a_removed_one_drops_it(database_url):
    clock = FrozenClock(datetime.now(UTC))
    s = shop(database_url, {"vic": True}, clock=clock, name="birthday-change",
             traits={"vic": {"birthday": "1990-03-30", "timezone": "Europe/Berlin"}})  # fmt: skip
    berlin = ZoneInfo("Europe/Berlin")
    s.journey({"trigger": {"dateTrait": "birthday", "annual": True, "at": "09:00"},
               "steps": [_send(s.template_id)]})  # fmt: skip
    assert _schedules(s) == {s.people["vic"]: next_anniversary(clock.now(), date(1990, 3, 30),
                                                               time(9), berlin)}  # fmt: skip
    clock.set(datetime.now(UTC))  # newer than the traits the profile was made with
    s.identify("vic", {"birthday": "1990-03-06"})
    moved = next_anniversary(datetime.now(UTC), date(1990, 3, 6), time(9), berlin)
    assert _schedules(s) == {s.people["vic"]: moved}
    s.identify("vic", {"birthday": None})
    assert _schedules(s) == {}, "no date, no schedule"


def test_days_without_events_enter_once_and_a_new_event_starts_the_count_again(database_url):
    clock = FrozenClock(datetime(2026, 5, 1, 10, tzinfo=UTC))
    s = shop(database_url, {"xan": True, "yve": True}, clock=clock, name="inactive")
    s.track("xan", "Page Viewed")
    s.track("yve", "Page Viewed")
    journey = s.journey({"trigger": {"inactiveDays": 3}, "reentry": "after_exit",
                         "steps": [_send(s.template_id)]})  # fmt: skip
    clock.advance(timedelta(days=2))
    s.track("yve", "Order Completed")
    clock.advance(timedelta(days=1, seconds=1))
    assert s.run_due().sends == 1
    assert list(s.by_person(journey)) == ["xan"]
    assert s.by_person(journey)["xan"][0].event["name"] == "Inactive"
    clock.advance(timedelta(days=2))
    s.run_due()
    assert sorted(s.by_person(journey)) == ["xan", "yve"]
    clock.advance(timedelta(days=10))
    s.run_due()
    assert [len(v) for v in s.by_person(journey).values()] == [1, 1], "once per silence"
