"""simulateJourney: the engine's own code over a virtual clock, for one profile; writes nothing."""

import asyncio
import base64
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from starlette.testclient import TestClient

from consent.keys import Keys
from delivery.journeys import simulation
from delivery.sending import domains, throttle
from delivery.sending import policy as rules
from delivery.templates import recipients
from delivery.templates import services as template_services
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from domain.workspaces import CreatedWorkspace
from tests.cdp.segments.support import in_uow
from tests.conftest import gql
from tests.delivery.journeys.support import ACTOR, MJML, T0, Shop, cart_definition, shop
from tests.support import factories
from tests.support.database import APP_ROLE, SECRET

SEND = "hello@shop.example"
SIMULATE = (
    "query($d: JSON!, $p: ID!, $e: JSON) { simulateJourney(definition: $d, profileId: $p, "
    "events: $e) }"
)
CART = [{"event": "Product Added", "properties": {"sku": "SKU-1"}}]


def _simulate(s: Shop, definition: Any, person: str, events: Any = None) -> dict[str, Any]:
    """The simulation in a unit of work that is never committed, as the API runs it."""

    async def run() -> dict[str, Any]:
        engine = create_engine(s.database_url, role=APP_ROLE, pool_size=1)
        try:
            async with UnitOfWork(session_factory(engine), workspace_id=s.workspace_id,
                                  clock=s.clock) as uow:  # fmt: skip
                keys = Keys(SECRET)
                return await simulation.simulate(
                    uow, keys, recipients.LinkMaker(keys, "https://cdp.example"), definition,
                    profile_id=s.people[person], events=events,
                )  # fmt: skip
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _send(template_id: UUID, **extra: Any) -> dict[str, Any]:
    return {"send": {"templateId": str(template_id), "purpose": "marketing", "fromEmail": SEND},
            **extra}  # fmt: skip


def _kinds(result: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in result["timeline"]]


def _one(result: dict[str, Any], kind: str) -> dict[str, Any]:
    [found] = [e for e in result["timeline"] if e["kind"] == kind]
    return dict(found)


def _policy(s: Shop, **values: Any) -> None:
    async def set_it(uow: UnitOfWork) -> None:
        await rules.set_policy(uow, ACTOR, rules.SendPolicy(
            sending_domain_rate=throttle.MAX_RATE, recipient_domain_rate=throttle.MAX_RATE,
            **values))  # fmt: skip

    s.uow(set_it)


def test_the_cart_reminder_waits_an_hour_then_would_send_with_its_subject(
    database_url: str,
) -> None:
    s = shop(database_url, {"alice": True}, name="sim-cart")
    result = _simulate(s, cart_definition(s.template_id), "alice", CART)
    assert (result["entered"], result["outcome"], result["converted"]) == (True, "COMPLETED", False)
    assert result["enteredAt"] == T0.isoformat()
    assert _kinds(result) == ["enter", "wait", "wait", "send", "complete"]
    enter, waits, done, send, complete = result["timeline"]
    assert (enter["outcome"], enter["event"], enter["offset"]) == ("entered", "Product Added", "0s")
    assert waits["outcome"] == f"waits until {(T0 + timedelta(hours=1)).isoformat()}"
    assert (done["outcome"], done["offset"], done["offsetSeconds"]) == ("done", "1h", 3600)
    assert send["outcome"] == "would send"
    assert send["reason"] is None
    assert send["subject"] == "Your cart, Alice"
    assert send["sendAt"] == send["at"] == (T0 + timedelta(hours=1)).isoformat()
    assert send["templateId"] == base64.b64encode(f"Template:{s.template_id}".encode()).decode()
    assert send["step"] == "s2"
    assert complete["offset"] == "1h"


def test_an_order_within_the_wait_exits_before_the_send_and_converts(database_url: str) -> None:
    s = shop(database_url, {"bob": True}, name="sim-order")
    events = [*CART, {"event": "Order Completed", "properties": {"revenue": 30},
                      "after": {"minutes": 30}}]  # fmt: skip
    result = _simulate(s, cart_definition(s.template_id), "bob", events)
    assert (result["outcome"], result["exitReason"]) == ("EXITED", "exitOn Order Completed")
    assert result["converted"] is True
    assert _kinds(result) == ["enter", "wait", "event", "exit", "goal"]
    assert [(e["offset"], e["outcome"]) for e in result["timeline"][2:]] == [
        ("30m", "exits"), ("30m", "exits"), ("30m", "converted")]  # fmt: skip


def test_an_order_after_the_journey_still_converts_within_the_goal_window(
    database_url: str,
) -> None:
    s = shop(database_url, {"bea": True}, name="sim-late-order")
    events = [*CART, {"event": "Order Completed", "after": {"days": 2}},
              {"event": "Order Completed", "after": {"days": 3}}]  # fmt: skip
    result = _simulate(s, cart_definition(s.template_id), "bea", events)
    assert (result["outcome"], result["converted"]) == ("COMPLETED", True)
    assert _kinds(result)[-2:] == ["complete", "goal"]
    assert _one(result, "goal")["offset"] == "2d"


def test_without_consent_the_send_is_skipped_with_the_gates_reason(database_url: str) -> None:
    s = shop(database_url, {"carol": False}, name="sim-consent")
    result = _simulate(s, cart_definition(s.template_id), "carol", CART)
    send = _one(result, "send")
    assert send["outcome"] == "would skip"
    assert "consent" in send["reason"]
    assert (send["subject"], send["sendAt"]) == (None, None)
    assert result["outcome"] == "COMPLETED"


def test_in_quiet_hours_the_message_waits_for_their_end(database_url: str) -> None:
    s = shop(database_url, {"dora": True}, name="sim-quiet")
    # The send comes at 13:00 UTC, 14:00 in Berlin (winter time).
    _policy(s, quiet_start="13:30", quiet_end="16:30", default_timezone="Europe/Berlin")
    send = _one(_simulate(s, cart_definition(s.template_id), "dora", CART), "send")
    assert send["outcome"] == "would send later"
    assert send["reason"] == "quiet hours: waits until 16:30 in Europe/Berlin"
    assert send["sendAt"] == (T0 + timedelta(hours=3, minutes=30)).isoformat()
    assert send["subject"] == "Your cart, Dora"


def test_the_frequency_cap_counts_the_simulations_own_messages(database_url: str) -> None:
    s = shop(database_url, {"eve": True}, name="sim-cap")
    _policy(s, frequency_cap=1, frequency_hours=24)
    definition = {"trigger": {"event": "Product Added"},
                  "steps": [_send(s.template_id), {"wait": {"hours": 1}}, _send(s.template_id),
                            {"wait": {"days": 1}}, _send(s.template_id)]}  # fmt: skip
    sends = [e for e in _simulate(s, definition, "eve", CART)["timeline"] if e["kind"] == "send"]
    assert [(e["offset"], e["outcome"]) for e in sends] == [
        ("0s", "would send"), ("1h", "would skip"), ("1d 1h", "would send")]  # fmt: skip
    assert sends[1]["reason"] == "frequency cap: 1 messages in 24 hours"


def _wait_for(template_id: UUID) -> dict[str, Any]:
    return {
        "trigger": {"event": "Product Added"},
        "steps": [{"waitFor": {"event": "Coupon Opened", "where": [
            {"property": "code", "op": "eq", "value": "SAVE10"}], "timeout": {"days": 1},
            "then": [_send(template_id)], "else": [{"exit": {}}]}}],
    }  # fmt: skip


def test_a_wait_for_takes_then_when_its_event_comes_in_time(database_url: str) -> None:
    s = shop(database_url, {"finn": True}, name="sim-waitfor")
    events = [*CART,
              {"event": "Coupon Opened", "properties": {"code": "OTHER"}, "after": {"hours": 1}},
              {"event": "Coupon Opened", "properties": {"code": "SAVE10"}, "after": {"hours": 2}}]  # fmt: skip
    result = _simulate(s, _wait_for(s.template_id), "finn", events)
    assert _kinds(result) == ["enter", "waitFor", "event", "event", "send", "complete"]
    ignored, answered = result["timeline"][2:4]
    assert (ignored["outcome"], answered["outcome"], answered["step"]) == (
        "no effect",
        "then",
        "s1",
    )
    assert (_one(result, "send")["offset"], result["outcome"]) == ("2h", "COMPLETED")


def test_a_wait_for_times_out_into_else_when_its_event_comes_late(database_url: str) -> None:
    s = shop(database_url, {"gus": True}, name="sim-timeout")
    events = [*CART, {"event": "Coupon Opened", "properties": {"code": "SAVE10"},
                      "after": {"days": 2}}]  # fmt: skip
    result = _simulate(s, _wait_for(s.template_id), "gus", events)
    assert _kinds(result) == ["enter", "waitFor", "waitFor", "exit"]
    assert result["timeline"][2]["outcome"] == "timed out: else"
    assert (result["timeline"][3]["offset"], result["outcome"]) == ("1d", "EXITED")
    assert result["exitReason"] == "exit step"


def test_a_split_is_stable_for_a_profile(database_url: str) -> None:
    s = shop(database_url, {"hana": True, "ivan": True}, name="sim-split")
    definition = {"trigger": {"event": "Product Added"}, "steps": [{"split": [
        {"weight": 1, "steps": [{"wait": {"hours": 1}}]},
        {"weight": 1, "steps": [{"wait": {"hours": 2}}]}]}]}  # fmt: skip
    for person in ("hana", "ivan"):
        paths = {_one(_simulate(s, definition, person, CART), "split")["outcome"]
                 for _ in range(3)}  # fmt: skip
        assert len(paths) == 1
        assert paths <= {"path 0", "path 1"}


def test_a_branch_reads_the_profile_as_it_is_now(database_url: str) -> None:
    s = shop(database_url, {"pia": True, "quinn": True}, name="sim-branch")
    definition = {"trigger": {"event": "Product Added"}, "steps": [{"branch": {
        "if": {"trait": "first_name", "op": "eq", "value": "Pia"},
        "then": [_send(s.template_id)], "else": [{"exit": {}}]}}]}  # fmt: skip
    pia, quinn = (_simulate(s, definition, p, CART) for p in ("pia", "quinn"))
    assert (_one(pia, "branch")["outcome"], pia["outcome"]) == ("then", "COMPLETED")
    assert (_one(quinn, "branch")["outcome"], quinn["exitReason"]) == ("else", "exit step")


def test_a_trigger_that_never_fires_says_why(database_url: str) -> None:
    s = shop(database_url, {"jo": True}, name="sim-never")
    result = _simulate(s, cart_definition(s.template_id), "jo",
                       [{"event": "Page Viewed"}])  # fmt: skip
    assert (result["entered"], result["outcome"], result["enteredAt"]) == (
        False,
        "NOT_ENTERED",
        None,
    )
    assert result["note"] == 'no event matches the trigger "Product Added"'
    assert [(e["kind"], e["outcome"]) for e in result["timeline"]] == [
        ("enter", "never enters"), ("event", "no effect")]  # fmt: skip


def test_a_date_trigger_enters_at_the_next_anniversary_or_never_without_a_date(
    database_url: str,
) -> None:
    s = shop(database_url, {"kim": True}, name="sim-birthday")
    with factories.seeding(database_url) as db:
        s.people["lou"] = factories.profile(db, s.workspace_id, traits={
            "birthday": "1990-03-06", "timezone": "Europe/Berlin"})  # fmt: skip
        db.commit()
    definition = {"trigger": {"dateTrait": "birthday", "annual": True, "at": "09:00"},
                  "steps": [{"wait": {"hours": 1}}]}  # fmt: skip
    lou = _simulate(s, definition, "lou")
    assert lou["enteredAt"] == (T0 + timedelta(days=4) - timedelta(hours=4)).isoformat()
    assert lou["outcome"] == "COMPLETED"
    kim = _simulate(s, definition, "kim")
    assert (kim["outcome"], kim["note"]) == ("NOT_ENTERED", 'the profile has no trait "birthday"')
    segment = _simulate(s, {**definition, "trigger": {"inactiveDays": 30}}, "kim")
    assert _one(segment, "enter")["reason"] == "entered as if the trigger fired now"


def _counts(s: Shop) -> dict[str, int]:
    async def count(uow: UnitOfWork) -> dict[str, int]:
        found = {}
        for table in ("journeys", "journey_enrollments", "campaigns", "deliveries", "outbox"):
            [row] = await uow.fetch(f"SELECT count(*) AS n FROM {table}")
            found[table] = row.n
        return found

    return s.uow(count)  # type: ignore[no-any-return]


def test_a_simulation_writes_nothing(database_url: str) -> None:
    s = shop(database_url, {"max": True}, name="sim-nothing")
    before = _counts(s)
    result = _simulate(s, cart_definition(s.template_id), "max", CART)
    assert _one(result, "send")["outcome"] == "would send"
    assert _counts(s) == before


def test_bad_events_and_definitions_are_refused_with_their_paths(database_url: str) -> None:
    s = shop(database_url, {"ned": True}, name="sim-bad")
    definition = cart_definition(s.template_id)
    with pytest.raises(simulation.SimulationInputError) as caught:
        _simulate(s, definition, "ned", [
            {"event": "Product Added"},
            {"event": "Order Completed", "after": {"hours": -1}},
            {"name": "x", "after": {"weeks": 1}},
            "Order Completed",
        ])  # fmt: skip
    assert [e.field for e in caught.value.errors] == [
        "events[1].after.hours", "events[2].name", "events[2].event", "events[2].after.weeks",
        "events[3]"]  # fmt: skip
    assert caught.value.message.startswith("events[1].after.hours: ")
    assert caught.value.field == "events[1].after.hours"

    for events, path in (({"event": "x"}, "events"), ([{}] * 101, "events"),
                         ([{"event": "x", "after": {"days": 401}}], "events[0].after")):  # fmt: skip
        with pytest.raises(simulation.SimulationInputError) as caught:
            _simulate(s, definition, "ned", events)
        assert caught.value.field == path

    bad = {**definition, "steps": [{"wait": {"hours": 0}}, _send(UUID(int=1))]}
    with pytest.raises(simulation.SimulationInputError) as caught:
        _simulate(s, bad, "ned", CART)
    assert [e.field for e in caught.value.errors] == ["definition.steps[0].wait"]
    other = {**definition, "steps": [{"wait": {"hours": 1}}, {"split": [
        {"weight": 1, "steps": [_send(UUID(int=1))]},
        {"weight": 1, "steps": [{"send": {**_send(s.template_id)["send"],
                                          "fromEmail": "a@elsewhere.example"}}]}]}]}  # fmt: skip
    with pytest.raises(simulation.SimulationInputError) as caught:
        _simulate(s, other, "ned", CART)
    assert [e.field for e in caught.value.errors] == [
        "definition.steps[1].split[0].steps[0].send.templateId",
        "definition.steps[1].split[1].steps[0].send.fromEmail"]  # fmt: skip


def test_simulate_journey_through_graphql(
    client: TestClient, workspace: CreatedWorkspace, database_url: str
) -> None:
    ws, token = workspace.workspace.id, workspace.api_token
    with factories.seeding(database_url) as db:
        person = factories.profile(db, ws, traits={"first_name": "Ola"},
                                   identifiers=[("email", "ola@example.org")])  # fmt: skip
        factories.consent_record(db, ws, person, purpose="marketing")
        db.commit()

    async def setup(uow: UnitOfWork) -> UUID:
        saved = await template_services.create(uow, ACTOR, template_services.TemplateInput(
            "cart", "Your cart, {{ profile.traits.first_name }}", MJML))  # fmt: skip
        await domains.add(uow, ACTOR, SECRET, "shop.example", ed25519=False)
        return saved.template.id

    template_id = in_uow(database_url, ws, setup)
    profile = base64.b64encode(f"Profile:{person}".encode()).decode()
    definition = cart_definition(template_id)
    body = gql(client, SIMULATE, {"d": definition, "p": profile, "e": CART}, token=token)
    assert "errors" not in body, body
    result = body["data"]["simulateJourney"]
    assert (result["outcome"], _kinds(result)) == (
        "COMPLETED", ["enter", "wait", "wait", "send", "complete"])  # fmt: skip
    assert _one(result, "send")["subject"] == "Your cart, Ola"

    bad = gql(client, SIMULATE, {"d": definition, "p": profile,
                                 "e": [{"event": "Product Added", "after": {"hours": "1"}}]},
              token=token)  # fmt: skip
    assert bad["data"] is None
    [error] = bad["errors"]
    assert error["extensions"] == {"code": "INVALID", "field": "events[0].after.hours"}
    assert error["message"].startswith("events[0].after.hours: ")
    unknown = gql(client, SIMULATE, {"d": {"trigger": {"event": "x"}, "steps": []}, "p": profile},
                  token=token)  # fmt: skip
    assert unknown["errors"][0]["extensions"]["field"] == "definition.steps"
    nobody = base64.b64encode(f"Profile:{UUID(int=7)}".encode()).decode()
    gone = gql(client, SIMULATE, {"d": definition, "p": nobody}, token=token)
    assert gone["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "profileId"}
