"""Versions, pause, resume and archive, through the real inbox, timer and sending code."""

from datetime import timedelta
from typing import Any

import pytest

from delivery.journeys import services
from delivery.sending import campaigns
from delivery.sending import repository as sending_store
from domain.errors import ConflictError
from domain.uow import UnitOfWork
from tests.delivery.journeys.support import ACTOR, cart_definition, shop
from tests.delivery.sending.test_campaigns import smtp  # noqa: F401 - a fixture


def _update(s: Any, journey_id: Any, definition: dict[str, Any]) -> Any:
    async def edit(uow: UnitOfWork) -> Any:
        return await services.update(
            uow, ACTOR, journey_id, services.JourneyInput("cart", definition)
        )

    return s.uow(edit)


def _act(s: Any, journey_id: Any, action: Any) -> Any:
    async def act(uow: UnitOfWork) -> Any:
        return await action(uow, ACTOR, journey_id)

    return s.uow(act)


def _current(s: Any, journey_id: Any) -> Any:
    async def read(uow: UnitOfWork) -> Any:
        return await services.current_definition(uow, await services.get(uow, journey_id))

    return s.uow(read)


def test_an_edit_makes_a_version_those_enrolled_finish_theirs_and_new_entries_take_the_new(
    database_url,
    smtp,  # noqa: F811 - the fixture
):
    inbox, port = smtp
    s = shop(database_url, {"ann": True, "ben": True}, name="versions")
    journey = s.journey(cart_definition(s.template_id))
    s.track("ann", "Product Added")
    s.run_inbox()
    s.run_due()

    first = _current(s, journey)
    ids = [step["id"] for step in first["steps"]]
    edited = {**first, "steps": [
        first["steps"][0] | {"wait": {"hours": 2}},
        first["steps"][1],
        {"send": {"templateId": str(s.template_id), "purpose": "marketing",
                  "fromEmail": "hello@shop.example"}},
    ]}  # fmt: skip
    row = _update(s, journey, edited)
    assert row.version == 2
    second = _current(s, journey)
    assert [step["id"] for step in second["steps"]][:2] == ids, "step ids are kept"
    assert second["steps"][2]["id"] not in ids
    assert _update(s, journey, second).version == 2, "an unchanged definition is no new version"

    s.track("ben", "Product Added")
    s.run_inbox()
    s.run_due()
    people = s.by_person(journey)
    assert (people["ann"][0].version, people["ben"][0].version) == (1, 2)

    s.clock.advance(timedelta(hours=1))
    s.run_due()
    s.send_all(journey, port)
    assert [rcpt for _f, rcpt, _r in inbox.messages] == [["ann@example.org"]]
    assert s.by_person(journey)["ann"][0].state == "COMPLETED", "version 1 has one send"

    s.clock.advance(timedelta(hours=1))
    s.run_due()
    s.send_all(journey, port)
    assert [rcpt for _f, rcpt, _r in inbox.messages][1:] == [["ben@example.org"]] * 2
    assert s.by_person(journey)["ben"][0].state == "COMPLETED"


def test_pause_holds_everyone_and_sends_nothing_resume_goes_on_archive_exits_all(
    database_url,
    smtp,  # noqa: F811 - the fixture
):
    inbox, port = smtp
    s = shop(database_url, {"cat": True, "dan": True, "eve": True}, name="pause")
    journey = s.journey(cart_definition(s.template_id))
    s.track("cat", "Product Added")
    s.track("dan", "Product Added")
    s.run_inbox()
    s.run_due()

    _act(s, journey, services.pause)
    s.track("eve", "Product Added")
    assert s.run_inbox() == 0, "a paused journey takes no entries"
    s.track("dan", "Order Completed")
    s.run_inbox()
    s.clock.advance(timedelta(hours=3))
    assert s.run_due().moved == 0
    s.send_all(journey, port)
    assert inbox.messages == []
    people = s.by_person(journey)
    assert (people["cat"][0].state, people["cat"][0].waiting) == ("ACTIVE", True)
    assert people["dan"][0].state == "EXITED", "exits apply while paused"

    _act(s, journey, services.activate)
    assert s.run_due().sends == 1
    s.send_all(journey, port)
    assert [rcpt for _f, rcpt, _r in inbox.messages] == [["cat@example.org"]]

    s.track("eve", "Product Added")
    s.run_inbox()
    s.run_due()
    _act(s, journey, services.archive)
    eve = s.by_person(journey)["eve"][0]
    assert (eve.state, eve.exit_reason) == ("EXITED", "journey archived")
    s.clock.advance(timedelta(hours=3))
    assert s.run_due().moved == 0
    s.track("eve", "Product Added")
    assert s.run_inbox() == 0


def test_a_journeys_send_step_cannot_be_paused_resumed_or_cancelled_as_a_campaign(database_url):
    s = shop(database_url, {"liz": True}, name="steps")
    journey = s.journey(cart_definition(s.template_id))

    async def try_all(uow: UnitOfWork) -> list[str]:
        [step] = (await sending_store.step_campaigns(uow, [journey])).values()
        refused = []
        for action in (campaigns.pause, campaigns.resume, campaigns.cancel, campaigns.send):
            with pytest.raises(ConflictError) as caught:
                await action(uow, ACTOR, step)
            refused.append(caught.value.message)
        return refused

    assert all("journey" in message for message in s.uow(try_all))


def test_a_journeys_step_keeps_one_delayed_batch_job_however_many_short_ones_end(database_url):
    from datetime import timedelta

    from delivery.sending import repository as sending_store

    s = shop(database_url, {"max": True}, name="wakes")
    journey = s.journey(cart_definition(s.template_id))

    async def wakes(uow: UnitOfWork) -> list[bool]:
        [step] = (await sending_store.step_campaigns(uow, [journey])).values()
        later = uow.clock.now() + timedelta(hours=8)
        return [
            await sending_store.take_wake(uow, step, later),  # the first: queue it
            await sending_store.take_wake(uow, step, later),  # one is set by then
            await sending_store.take_wake(uow, step, later + timedelta(hours=1)),  # later still
            await sending_store.take_wake(uow, step, later - timedelta(hours=1)),  # earlier: queue
        ]

    assert s.uow(wakes) == [True, False, False, True]
