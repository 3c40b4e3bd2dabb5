"""Journey definitions: parse's nodes, rules and paths, step ids, the JSON Schema, event matches."""

import copy
import json
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdp.segments import definition as segments
from cdp.segments.definition import DefinitionError
from cdp.segments.model import (
    MAX_DEPTH,
    All,
    Comparison,
    EventCondition,
    PropertyFilter,
    SegmentCondition,
    TraitCondition,
)
from delivery.journeys.definition import (
    MAX_NESTING,
    MAX_SPLIT_PATHS,
    MAX_STEPS,
    event_matches,
    parse,
    schema,
    with_step_ids,
)
from delivery.journeys.model import (
    REENTRY_AFTER_EXIT,
    REENTRY_NEVER,
    Branch,
    DateTrigger,
    Definition,
    EventMatch,
    EventTrigger,
    Exit,
    Goal,
    InactivityTrigger,
    SegmentTrigger,
    Send,
    Split,
    SplitPath,
    Step,
    Trigger,
    Wait,
    WaitFor,
    walk,
)
from domain.errors import FieldError, ValidationError

VIP = UUID("11111111-1111-1111-1111-111111111111")
CART = UUID("22222222-2222-2222-2222-222222222222")
WELCOME = UUID("33333333-3333-3333-3333-333333333333")
SEGMENT_IDS = {"Segment:vip": VIP}
TEMPLATE_IDS = {"Template:cart": CART, "Template:welcome": WELCOME}
VALIDATOR = jsonschema.Draft202012Validator(schema())

SEND = {"templateId": "Template:cart", "purpose": "marketing", "fromEmail": "shop@acme.com"}
SENT = Send("s", CART, "marketing", "shop@acme.com")
EXIT = {"id": "end", "exit": {}}
PLAN = {"trait": "plan", "op": "eq", "value": "pro"}
PRO = TraitCondition(("plan",), Comparison("eq", "pro"))


def read(raw: Any) -> Definition:
    return parse(raw, segment_id=SEGMENT_IDS.get, template_id=TEMPLATE_IDS.get)


def problems(raw: Any) -> list[tuple[str | None, str]]:
    with pytest.raises(DefinitionError) as caught:
        read(raw)
    return [(e.field, e.message) for e in caught.value.errors]


def journey(*steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A valid journey with these steps (one exit if none), `top` replacing top-level keys."""
    return {"trigger": {"event": "Signed Up"}, "steps": list(steps) or [EXIT], **top}


def step(kind: str, body: Any, step_id: str = "s") -> dict[str, Any]:
    return {"id": step_id, kind: body}


def only_step(raw: dict[str, Any]) -> Step:
    [found] = read(journey(raw)).steps
    return found


def nested(levels: int) -> dict[str, Any]:
    """A journey whose deepest step is `levels` deep: branches inside branches."""
    inner: dict[str, Any] = step("exit", {}, f"s{levels}")
    for level in range(levels - 1, 0, -1):
        inner = step("branch", {"if": PLAN, "then": [inner]}, f"s{level}")
    return journey(inner)


# --- what parse reads ------------------------------------------------------------

ABANDONED_CART = {
    "trigger": {
        "event": "Product Added",
        "where": [{"property": "price", "op": "gt", "value": 0}],
    },
    "exitOn": [{"event": "Order Completed"}],
    "goal": {"event": "Order Completed", "withinDays": 7},
    "reentry": "after_exit",
    "steps": [
        {"id": "s1", "wait": {"hours": 1}},
        {"id": "s2", "send": SEND},
        {"id": "s3", "wait": {"hours": 23}},
        {"id": "s4", "send": {**SEND, "fromName": "Acme Shop"}},
        {"id": "s5", "wait": {"days": 2}},
        {"id": "s6", "send": {**SEND, "templateId": "Template:welcome"}},
    ],
}


def test_the_abandoned_cart() -> None:
    assert read(ABANDONED_CART) == Definition(
        trigger=EventTrigger(
            EventMatch("Product Added", (PropertyFilter(("price",), Comparison("gt", 0)),))
        ),
        exit_on=(EventMatch("Order Completed"),),
        goal=Goal("Order Completed", timedelta(days=7)),
        reentry=REENTRY_AFTER_EXIT,
        steps=(
            Wait("s1", duration=timedelta(hours=1)),
            Send("s2", CART, "marketing", "shop@acme.com"),
            Wait("s3", duration=timedelta(hours=23)),
            Send("s4", CART, "marketing", "shop@acme.com", from_name="Acme Shop"),
            Wait("s5", duration=timedelta(days=2)),
            Send("s6", WELCOME, "marketing", "shop@acme.com"),
        ),
    )


def test_the_defaults() -> None:
    found = read(journey())
    assert (found.exit_on, found.goal, found.reentry) == ((), None, REENTRY_NEVER)
    assert found.steps == (Exit("end"),)


TRIGGERS: list[tuple[str, dict[str, Any], Trigger]] = [
    ("event", {"event": "Signed Up"}, EventTrigger(EventMatch("Signed Up"))),
    (
        "event-where",
        {
            "event": "Order Completed",
            "where": [
                {"property": "total", "op": "gte", "value": 100},
                {"property": "shipping.country", "op": "in", "value": ["FR", "DE"]},
            ],
        },
        EventTrigger(
            EventMatch(
                "Order Completed",
                (
                    PropertyFilter(("total",), Comparison("gte", 100)),
                    PropertyFilter(("shipping", "country"), Comparison("in", ("FR", "DE"))),
                ),
            )
        ),
    ),
    ("event-where-empty", {"event": "E", "where": []}, EventTrigger(EventMatch("E"))),
    ("segment-entered", {"segmentEntered": "Segment:vip"}, SegmentTrigger(VIP, entered=True)),
    ("segment-exited", {"segmentExited": "Segment:vip"}, SegmentTrigger(VIP, entered=False)),
    (
        "date",
        {"dateTrait": "birthday", "annual": True, "at": "08:30"},
        DateTrigger("birthday", time(8, 30)),
    ),
    (
        "date-dotted-default-time",
        {"dateTrait": "dates.anniversary", "annual": True},
        DateTrigger("dates.anniversary", time(9, 0)),
    ),
    ("date-midnight", {"dateTrait": "d", "annual": True, "at": "00:00"}, DateTrigger("d", time())),
    (
        "date-last-minute",
        {"dateTrait": "d", "annual": True, "at": "23:59"},
        DateTrigger("d", time(23, 59)),
    ),
    ("inactive", {"inactiveDays": 30}, InactivityTrigger(30)),
    ("inactive-longest", {"inactiveDays": 3650}, InactivityTrigger(3650)),
]


@pytest.mark.parametrize(
    ("raw", "expected"), [t[1:] for t in TRIGGERS], ids=[t[0] for t in TRIGGERS]
)
def test_triggers(raw: dict[str, Any], expected: Trigger) -> None:
    assert read(journey(trigger=raw)).trigger == expected


STEPS: list[tuple[str, dict[str, Any], Step]] = [
    ("wait-hours", step("wait", {"hours": 1}), Wait("s", duration=timedelta(hours=1))),
    (
        "wait-every-unit",
        step("wait", {"days": 1, "hours": 2, "minutes": 3, "seconds": 4}),
        Wait("s", duration=timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ),
    (
        "wait-some-zero",
        step("wait", {"days": 0, "minutes": 90}),
        Wait("s", duration=timedelta(minutes=90)),
    ),
    ("wait-longest", step("wait", {"days": 3650}), Wait("s", duration=timedelta(days=3650))),
    (
        "wait-seconds",
        step("wait", {"seconds": 3650 * 86400}),
        Wait("s", duration=timedelta(days=3650)),
    ),
    ("wait-until", step("wait", {"until": "09:00"}), Wait("s", until=time(9, 0))),
    ("send", step("send", SEND), SENT),
    (
        "send-everything",
        step(
            "send",
            {
                "templateId": "Template:welcome",
                "purpose": " Newsletter ",
                "fromEmail": " news@Acme.COM ",
                "fromName": " Acme Shop ",
                "replyTo": "help@Acme.com",
            },
        ),
        Send("s", WELCOME, "newsletter", "news@acme.com", "Acme Shop", "help@acme.com"),
    ),
    (
        "send-nulls",
        step("send", {**SEND, "fromName": None, "replyTo": None}),
        SENT,
    ),
    ("send-blank-name", step("send", {**SEND, "fromName": "  "}), SENT),
    (
        "branch",
        step(
            "branch",
            {
                "if": {"all": [PLAN, {"segment": "Segment:vip"}]},
                "then": [step("send", SEND, "a")],
                "else": [step("exit", {}, "b")],
            },
        ),
        Branch(
            "s",
            All((PRO, SegmentCondition(VIP))),
            then=(Send("a", CART, "marketing", "shop@acme.com"),),
            otherwise=(Exit("b"),),
        ),
    ),
    ("branch-no-paths", step("branch", {"if": PLAN}), Branch("s", PRO)),
    ("branch-empty-paths", step("branch", {"if": PLAN, "then": [], "else": []}), Branch("s", PRO)),
    (
        "split",
        step(
            "split",
            [
                {"weight": 50, "steps": [step("send", SEND, "a")]},
                {"weight": 25.5, "steps": []},
                {"weight": 1},
            ],
        ),
        Split(
            "s",
            (
                SplitPath(50.0, (Send("a", CART, "marketing", "shop@acme.com"),)),
                SplitPath(25.5),
                SplitPath(1.0),
            ),
        ),
    ),
    (
        "wait-for",
        step(
            "waitFor",
            {
                "event": "Order Completed",
                "where": [{"property": "total", "op": "exists"}],
                "timeout": {"days": 3},
                "then": [step("exit", {}, "a")],
                "else": [step("send", SEND, "b")],
            },
        ),
        WaitFor(
            "s",
            EventMatch("Order Completed", (PropertyFilter(("total",), Comparison("exists")),)),
            timedelta(days=3),
            then=(Exit("a"),),
            otherwise=(Send("b", CART, "marketing", "shop@acme.com"),),
        ),
    ),
    (
        "wait-for-bare",
        step("waitFor", {"event": "Clicked", "timeout": {"minutes": 30}}),
        WaitFor("s", EventMatch("Clicked"), timedelta(minutes=30)),
    ),
    ("exit", step("exit", {}), Exit("s")),
    ("id-any-allowed-characters", {"id": "Intro_mail-2", "exit": {}}, Exit("Intro_mail-2")),
    ("id-longest", {"id": "x" * 64, "exit": {}}, Exit("x" * 64)),
]


@pytest.mark.parametrize(("raw", "expected"), [s[1:] for s in STEPS], ids=[s[0] for s in STEPS])
def test_steps(raw: dict[str, Any], expected: Step) -> None:
    assert only_step(raw) == expected


def test_the_longest_split() -> None:
    paths = [{"weight": 1}] * MAX_SPLIT_PATHS
    found = only_step(step("split", paths))
    assert isinstance(found, Split)
    assert len(found.paths) == MAX_SPLIT_PATHS


def test_nesting_up_to_the_limit() -> None:
    found = read(nested(MAX_NESTING))
    assert len(walk(found.steps)) == MAX_NESTING


def test_as_many_steps_as_the_limit() -> None:
    inner = [step("wait", {"hours": 1}, f"w{i}") for i in range(MAX_STEPS - 3)]
    found = read(
        journey(
            step("exit", {}, "a"),
            step("split", [{"weight": 1, "steps": inner}, {"weight": 1, "steps": [EXIT]}]),
        )
    )
    assert len(walk(found.steps)) == MAX_STEPS


def test_a_branch_condition_can_be_as_deep_as_a_segment() -> None:
    condition: dict[str, Any] = PLAN
    for _ in range(MAX_DEPTH - 1):
        condition = {"not": condition}
    assert isinstance(only_step(step("branch", {"if": condition})), Branch)


def test_event_names_are_those_of_segments() -> None:
    name = "E" * 200
    found = read(journey(trigger={"event": name}, exitOn=[{"event": "Ünïcode ✓"}]))
    assert found.trigger == EventTrigger(EventMatch(name))
    assert found.exit_on == (EventMatch("Ünïcode ✓"),)


def test_parse_leaves_its_input_alone() -> None:
    raw = copy.deepcopy(ABANDONED_CART)
    read(raw)
    assert raw == ABANDONED_CART


# --- what parse refuses, where, and why ---------------------------------------------

S0 = "definition.steps[0]"

CASES: list[tuple[str, Any, str, str]] = [
    # the definition
    ("not-an-object", [EXIT], "definition", "must be a JSON object"),
    ("null", None, "definition", "found null"),
    ("unknown-key", journey(name="x"), "definition.name", 'unknown key "name"'),
    ("no-trigger", {"steps": [EXIT]}, "definition.trigger", '"trigger" is required'),
    ("no-steps", {"trigger": {"event": "E"}}, "definition.steps", '"steps" is required'),
    ("steps-empty", journey(steps=[]), "definition.steps", "at least one step"),
    ("steps-not-a-list", journey(steps=EXIT), "definition.steps", "must be a list of steps"),
    (
        "reentry-unknown",
        journey(reentry="sometimes"),
        "definition.reentry",
        "never, after_exit, always",
    ),
    ("reentry-null", journey(reentry=None), "definition.reentry", "found null"),
    # triggers
    ("trigger-a-string", journey(trigger="Signed Up"), "definition.trigger", "must be an object"),
    (
        "trigger-empty",
        journey(trigger={}),
        "definition.trigger",
        "exactly one of the keys event, segmentEntered",
    ),
    (
        "trigger-two-kinds",
        journey(trigger={"event": "E", "inactiveDays": 3}),
        "definition.trigger",
        'found "event", "inactiveDays"',
    ),
    (
        "trigger-event-count",
        journey(trigger={"event": "E", "count": {"op": "gte", "value": 2}}),
        "definition.trigger.count",
        'unknown key "count"; a "event" trigger has the keys event, where',
    ),
    (
        "trigger-event-empty",
        journey(trigger={"event": ""}),
        "definition.trigger.event",
        "1 to 200 characters",
    ),
    (
        "trigger-event-long",
        journey(trigger={"event": "E" * 201}),
        "definition.trigger.event",
        "1 to 200 characters",
    ),
    (
        "trigger-event-number",
        journey(trigger={"event": 7}),
        "definition.trigger.event",
        'such as "Order Completed"',
    ),
    (
        "trigger-where-not-a-list",
        journey(trigger={"event": "E", "where": {"property": "a", "op": "exists"}}),
        "definition.trigger.where",
        '"where" must be a list of property filters',
    ),
    (
        "trigger-where-op",
        journey(trigger={"event": "E", "where": [{"property": "a", "op": "equals", "value": 1}]}),
        "definition.trigger.where[0].op",
        'unknown operator "equals"; use one of: eq, neq',
    ),
    (
        "trigger-where-value",
        journey(trigger={"event": "E", "where": [{"property": "a", "op": "gt", "value": True}]}),
        "definition.trigger.where[0].value",
        '"value" must be a number or a string for "gt"',
    ),
    (
        "trigger-segment-unknown",
        journey(trigger={"segmentEntered": "Segment:nope"}),
        "definition.trigger.segmentEntered",
        '"Segment:nope" is not a segment id',
    ),
    (
        "trigger-segment-number",
        journey(trigger={"segmentExited": 5}),
        "definition.trigger.segmentExited",
        "5 is not a segment id",
    ),
    (
        "trigger-segment-extra",
        journey(trigger={"segmentEntered": "Segment:vip", "at": "09:00"}),
        "definition.trigger.at",
        'unknown key "at"',
    ),
    (
        "trigger-date-empty",
        journey(trigger={"dateTrait": "", "annual": True}),
        "definition.trigger.dateTrait",
        "the name of a trait holding a date",
    ),
    (
        "trigger-date-number",
        journey(trigger={"dateTrait": 1, "annual": True}),
        "definition.trigger.dateTrait",
        "the name of a trait holding a date",
    ),
    (
        "trigger-date-empty-part",
        journey(trigger={"dateTrait": "dates..birthday", "annual": True}),
        "definition.trigger.dateTrait",
        "has an empty part",
    ),
    (
        "trigger-date-long",
        journey(trigger={"dateTrait": "d" * 256, "annual": True}),
        "definition.trigger.dateTrait",
        "at most 255 characters",
    ),
    (
        "trigger-date-not-annual",
        journey(trigger={"dateTrait": "birthday", "annual": False}),
        "definition.trigger.annual",
        '"annual" must be true',
    ),
    (
        "trigger-date-annual-missing",
        journey(trigger={"dateTrait": "birthday"}),
        "definition.trigger.annual",
        '"annual" must be true',
    ),
    (
        "trigger-date-annual-string",
        journey(trigger={"dateTrait": "birthday", "annual": "true"}),
        "definition.trigger.annual",
        '"annual" must be true',
    ),
    (
        "trigger-date-at-short",
        journey(trigger={"dateTrait": "birthday", "annual": True, "at": "9:00"}),
        "definition.trigger.at",
        '"at" must be a time of day as "HH:MM" on a 24-hour clock',
    ),
    (
        "trigger-date-at-24",
        journey(trigger={"dateTrait": "birthday", "annual": True, "at": "24:00"}),
        "definition.trigger.at",
        'found "24:00"',
    ),
    (
        "trigger-date-at-seconds",
        journey(trigger={"dateTrait": "birthday", "annual": True, "at": "09:00:00"}),
        "definition.trigger.at",
        "HH:MM",
    ),
    (
        "trigger-date-at-number",
        journey(trigger={"dateTrait": "birthday", "annual": True, "at": 9}),
        "definition.trigger.at",
        "HH:MM",
    ),
    (
        "trigger-date-extra",
        journey(trigger={"dateTrait": "birthday", "annual": True, "zone": "UTC"}),
        "definition.trigger.zone",
        'a "dateTrait" trigger has the keys dateTrait, annual, at',
    ),
    (
        "trigger-inactive-zero",
        journey(trigger={"inactiveDays": 0}),
        "definition.trigger.inactiveDays",
        "from 1 to 3650",
    ),
    (
        "trigger-inactive-long",
        journey(trigger={"inactiveDays": 3651}),
        "definition.trigger.inactiveDays",
        "from 1 to 3650",
    ),
    (
        "trigger-inactive-string",
        journey(trigger={"inactiveDays": "30"}),
        "definition.trigger.inactiveDays",
        "whole number",
    ),
    (
        "trigger-inactive-float",
        journey(trigger={"inactiveDays": 30.0}),
        "definition.trigger.inactiveDays",
        "whole number",
    ),
    (
        "trigger-inactive-bool",
        journey(trigger={"inactiveDays": True}),
        "definition.trigger.inactiveDays",
        "whole number",
    ),
    # exits
    (
        "exits-not-a-list",
        journey(exitOn={"event": "E"}),
        "definition.exitOn",
        '"exitOn" must be a list',
    ),
    (
        "exits-too-many",
        journey(exitOn=[{"event": "E"}] * 101),
        "definition.exitOn",
        "at most 100 events",
    ),
    (
        "exit-a-string",
        journey(exitOn=["Order Completed"]),
        "definition.exitOn[0]",
        "an exit must be an object",
    ),
    (
        "exit-no-event",
        journey(exitOn=[{"where": []}]),
        "definition.exitOn[0].event",
        '"event" is required in an exit',
    ),
    (
        "exit-extra",
        journey(exitOn=[{"event": "E", "within": {"days": 1}}]),
        "definition.exitOn[0].within",
        'unknown key "within"; an exit has the keys event, where',
    ),
    (
        "exit-where",
        journey(
            exitOn=[{"event": "E"}, {"event": "F", "where": [{"property": "", "op": "exists"}]}]
        ),
        "definition.exitOn[1].where[0].property",
        '"property" must be a non-empty name',
    ),
    # goals
    (
        "goal-a-string",
        journey(goal="Order Completed"),
        "definition.goal",
        '"goal" must be an object',
    ),
    (
        "goal-no-event",
        journey(goal={"withinDays": 7}),
        "definition.goal.event",
        '"event" is required in a goal',
    ),
    (
        "goal-event-empty",
        journey(goal={"event": "", "withinDays": 7}),
        "definition.goal.event",
        "1 to 200 characters",
    ),
    (
        "goal-no-days",
        journey(goal={"event": "E"}),
        "definition.goal.withinDays",
        '"withinDays" is required in a goal',
    ),
    (
        "goal-zero-days",
        journey(goal={"event": "E", "withinDays": 0}),
        "definition.goal.withinDays",
        "from 1 to 3650",
    ),
    (
        "goal-where",
        journey(goal={"event": "E", "withinDays": 7, "where": []}),
        "definition.goal.where",
        'unknown key "where"; a goal has the keys event, withinDays',
    ),
    # steps
    ("step-a-string", journey("wait"), S0, "a step must be an object"),
    (
        "step-no-kind",
        journey({"id": "s"}),
        S0,
        "exactly one of the keys wait, send, branch, split, waitFor, exit; found none",
    ),
    (
        "step-misspelt",
        journey({"id": "s", "wiat": {"hours": 1}}),
        S0,
        'found none (the keys are "id", "wiat")',
    ),
    (
        "step-two-kinds",
        journey({"id": "s", "wait": {"hours": 1}, "exit": {}}),
        S0,
        'found "wait", "exit"',
    ),
    (
        "step-extra",
        journey({"id": "s", "exit": {}, "label": "bye"}),
        f"{S0}.label",
        'unknown key "label"; a "exit" step has the keys id, exit',
    ),
    ("step-no-id", journey({"exit": {}}), f"{S0}.id", "ids are assigned when the journey is saved"),
    (
        "step-null-id",
        journey({"id": None, "exit": {}}),
        f"{S0}.id",
        "ids are assigned when the journey is saved",
    ),
    (
        "step-id-number",
        journey({"id": 1, "exit": {}}),
        f"{S0}.id",
        '"id" must be 1 to 64 characters of A-Z',
    ),
    ("step-id-empty", journey({"id": "", "exit": {}}), f"{S0}.id", 'found ""'),
    ("step-id-space", journey({"id": "step 1", "exit": {}}), f"{S0}.id", 'found "step 1"'),
    ("step-id-long", journey({"id": "s" * 65, "exit": {}}), f"{S0}.id", "1 to 64 characters"),
    ("step-id-newline", journey({"id": "s1\n", "exit": {}}), f"{S0}.id", "1 to 64 characters"),
    # waits
    (
        "wait-a-number",
        journey(step("wait", 3600)),
        f"{S0}.wait",
        '"wait" must be a duration such as {"hours": 1}',
    ),
    (
        "wait-empty",
        journey(step("wait", {})),
        f"{S0}.wait",
        "at least one of seconds, minutes, hours, days",
    ),
    (
        "wait-weeks",
        journey(step("wait", {"weeks": 1, "days": 1})),
        f"{S0}.wait.weeks",
        'unknown key "weeks"; a wait has the keys seconds, minutes, hours, days, until',
    ),
    (
        "wait-negative",
        journey(step("wait", {"hours": -1, "days": 1})),
        f"{S0}.wait.hours",
        '"hours" must be a whole number, 0 or more',
    ),
    ("wait-fraction", journey(step("wait", {"hours": 1.5})), f"{S0}.wait.hours", "whole number"),
    (
        "wait-integral-float",
        journey(step("wait", {"hours": 1.0})),
        f"{S0}.wait.hours",
        "whole number",
    ),
    ("wait-string", journey(step("wait", {"days": "2"})), f"{S0}.wait.days", "whole number"),
    ("wait-bool", journey(step("wait", {"days": True})), f"{S0}.wait.days", "whole number"),
    ("wait-zero", journey(step("wait", {"days": 0, "hours": 0})), f"{S0}.wait", "longer than 0"),
    ("wait-too-long", journey(step("wait", {"days": 3651})), f"{S0}.wait", "at most 3650 days"),
    (
        "wait-too-long-summed",
        journey(step("wait", {"days": 3650, "seconds": 1})),
        f"{S0}.wait",
        "at most 3650 days",
    ),
    ("wait-huge", journey(step("wait", {"seconds": 10**40})), f"{S0}.wait", "at most 3650 days"),
    (
        "wait-both",
        journey(step("wait", {"hours": 1, "until": "09:00"})),
        f"{S0}.wait",
        "either a duration",
    ),
    (
        "wait-until-bad",
        journey(step("wait", {"until": "25:00"})),
        f"{S0}.wait.until",
        '"until" must be a time of day',
    ),
    ("wait-until-am", journey(step("wait", {"until": "9am"})), f"{S0}.wait.until", 'found "9am"'),
    ("wait-until-null", journey(step("wait", {"until": None})), f"{S0}.wait.until", "found null"),
    # sends
    (
        "send-a-string",
        journey(step("send", "Template:cart")),
        f"{S0}.send",
        '"send" must be an object',
    ),
    (
        "send-no-template",
        journey(step("send", {**SEND, "templateId": None} | {})),
        f"{S0}.send.templateId",
        "null is not a template id",
    ),
    (
        "send-template-missing",
        journey(step("send", {k: v for k, v in SEND.items() if k != "templateId"})),
        f"{S0}.send.templateId",
        '"templateId" is required',
    ),
    (
        "send-template-unknown",
        journey(step("send", {**SEND, "templateId": "Template:nope"})),
        f"{S0}.send.templateId",
        '"Template:nope" is not a template id',
    ),
    (
        "send-purpose-missing",
        journey(step("send", {k: v for k, v in SEND.items() if k != "purpose"})),
        f"{S0}.send.purpose",
        '"purpose" is required: the consent purpose',
    ),
    (
        "send-purpose-bad",
        journey(step("send", {**SEND, "purpose": "email marketing"})),
        f"{S0}.send.purpose",
        "purpose must be 1-64 characters of a-z",
    ),
    (
        "send-purpose-number",
        journey(step("send", {**SEND, "purpose": 1})),
        f"{S0}.send.purpose",
        '"purpose" must be a name',
    ),
    (
        "send-from-missing",
        journey(step("send", {k: v for k, v in SEND.items() if k != "fromEmail"})),
        f"{S0}.send.fromEmail",
        '"fromEmail" is required',
    ),
    (
        "send-from-bad",
        journey(step("send", {**SEND, "fromEmail": "shop"})),
        f"{S0}.send.fromEmail",
        '"fromEmail" "shop" is not an email address',
    ),
    (
        "send-from-null",
        journey(step("send", {**SEND, "fromEmail": None})),
        f"{S0}.send.fromEmail",
        "must be an email address; found null",
    ),
    (
        "send-from-name-long",
        journey(step("send", {**SEND, "fromName": "A" * 101})),
        f"{S0}.send.fromName",
        "one line of at most 100 characters",
    ),
    (
        "send-from-name-lines",
        journey(step("send", {**SEND, "fromName": "Acme\r\nBcc: x@y.com"})),
        f"{S0}.send.fromName",
        "one line",
    ),
    (
        "send-from-name-number",
        journey(step("send", {**SEND, "fromName": 1})),
        f"{S0}.send.fromName",
        "one line",
    ),
    (
        "send-reply-to-bad",
        journey(step("send", {**SEND, "replyTo": "help@"})),
        f"{S0}.send.replyTo",
        "is not an email address",
    ),
    (
        "send-subject",
        journey(step("send", {**SEND, "subject": "Hi"})),
        f"{S0}.send.subject",
        'unknown key "subject"; a send has the keys templateId',
    ),
    # branches
    (
        "branch-a-list",
        journey(step("branch", [PLAN])),
        f"{S0}.branch",
        '"branch" must be an object',
    ),
    (
        "branch-no-if",
        journey(step("branch", {"then": []})),
        f"{S0}.branch.if",
        '"if" is required: a condition as in a segment',
    ),
    (
        "branch-if-bad",
        journey(step("branch", {"if": {"all": [{"trait": "plan", "op": "is", "value": 1}]}})),
        f"{S0}.branch.if.all[0].op",
        'unknown operator "is"',
    ),
    (
        "branch-if-a-string",
        journey(step("branch", {"if": "vip"})),
        f"{S0}.branch.if",
        "a condition must be a JSON object",
    ),
    (
        "branch-if-segment",
        journey(step("branch", {"if": {"segment": "Segment:nope"}})),
        f"{S0}.branch.if.segment",
        "is not a segment id",
    ),
    (
        "branch-elif",
        journey(step("branch", {"if": PLAN, "elif": []})),
        f"{S0}.branch.elif",
        'unknown key "elif"; a branch has the keys if, then, else',
    ),
    (
        "branch-then-object",
        journey(step("branch", {"if": PLAN, "then": EXIT})),
        f"{S0}.branch.then",
        "must be a list of steps",
    ),
    (
        "branch-else-step",
        journey(step("branch", {"if": PLAN, "else": [EXIT, step("wait", {"hours": 0}, "w")]})),
        f"{S0}.branch.else[1].wait",
        "longer than 0",
    ),
    # splits
    (
        "split-an-object",
        journey(step("split", {"weight": 1})),
        f"{S0}.split",
        '"split" must be a list of 2 to 10 paths',
    ),
    ("split-one-path", journey(step("split", [{"weight": 1}])), f"{S0}.split", "2 to 10 paths"),
    ("split-no-paths", journey(step("split", [])), f"{S0}.split", "2 to 10 paths"),
    (
        "split-too-many",
        journey(step("split", [{"weight": 1}] * 11)),
        f"{S0}.split",
        "2 to 10 paths",
    ),
    (
        "split-path-a-list",
        journey(step("split", [{"weight": 1}, []])),
        f"{S0}.split[1]",
        "a path of a split must be an object",
    ),
    (
        "split-weight-missing",
        journey(step("split", [{"weight": 1}, {"steps": []}])),
        f"{S0}.split[1].weight",
        '"weight" is required: a number above 0',
    ),
    (
        "split-weight-zero",
        journey(step("split", [{"weight": 0}, {"weight": 1}])),
        f"{S0}.split[0].weight",
        "above 0",
    ),
    (
        "split-weight-negative",
        journey(step("split", [{"weight": -5}, {"weight": 1}])),
        f"{S0}.split[0].weight",
        "above 0",
    ),
    (
        "split-weight-string",
        journey(step("split", [{"weight": "50%"}, {"weight": 1}])),
        f"{S0}.split[0].weight",
        "above 0",
    ),
    (
        "split-weight-bool",
        journey(step("split", [{"weight": True}, {"weight": 1}])),
        f"{S0}.split[0].weight",
        "above 0",
    ),
    (
        "split-weight-inf",
        journey(step("split", [{"weight": float("inf")}, {"weight": 1}])),
        f"{S0}.split[0].weight",
        "above 0",
    ),
    (
        "split-path-name",
        journey(step("split", [{"weight": 1, "name": "A"}, {"weight": 1}])),
        f"{S0}.split[0].name",
        'unknown key "name"; a path of a split has the keys weight, steps',
    ),
    (
        "split-path-steps",
        journey(step("split", [{"weight": 1}, {"weight": 1, "steps": [{"exit": {}}]}])),
        f"{S0}.split[1].steps[0].id",
        "ids are assigned",
    ),
    # waits for an event
    (
        "wait-for-a-string",
        journey(step("waitFor", "Order Completed")),
        f"{S0}.waitFor",
        '"waitFor" must be an object',
    ),
    (
        "wait-for-no-event",
        journey(step("waitFor", {"timeout": {"days": 1}})),
        f"{S0}.waitFor.event",
        '"event" is required in a waitFor',
    ),
    (
        "wait-for-no-timeout",
        journey(step("waitFor", {"event": "E"})),
        f"{S0}.waitFor.timeout",
        '"timeout" is required: how long to wait',
    ),
    (
        "wait-for-timeout-number",
        journey(step("waitFor", {"event": "E", "timeout": 3})),
        f"{S0}.waitFor.timeout",
        '"timeout" must be a duration',
    ),
    (
        "wait-for-timeout-until",
        journey(step("waitFor", {"event": "E", "timeout": {"until": "09:00"}})),
        f"{S0}.waitFor.timeout.until",
        'unknown key "until"; a duration has the keys',
    ),
    (
        "wait-for-timeout-empty",
        journey(step("waitFor", {"event": "E", "timeout": {}})),
        f"{S0}.waitFor.timeout",
        "at least one of",
    ),
    (
        "wait-for-count",
        journey(
            step(
                "waitFor",
                {"event": "E", "timeout": {"days": 1}, "count": {"op": "gte", "value": 2}},
            )
        ),
        f"{S0}.waitFor.count",
        'unknown key "count"; a waitFor has the keys event, where, timeout, then, else',
    ),
    (
        "wait-for-where",
        journey(
            step(
                "waitFor",
                {
                    "event": "E",
                    "timeout": {"days": 1},
                    "where": [{"property": "a", "op": "exists", "value": 1}],
                },
            )
        ),
        f"{S0}.waitFor.where[0].value",
        '"exists" takes no "value"',
    ),
    (
        "wait-for-then",
        journey(
            step(
                "waitFor",
                {"event": "E", "timeout": {"days": 1}, "then": [{"id": "a", "exit": None}]},
            )
        ),
        f"{S0}.waitFor.then[0].exit",
        '"exit" takes no settings',
    ),
    # exits
    (
        "exit-settings",
        journey(step("exit", {"reason": "done"})),
        f"{S0}.exit",
        'write {"exit": {}}',
    ),
    ("exit-true", journey(step("exit", body=True)), f"{S0}.exit", 'write {"exit": {}}'),
]


@pytest.mark.parametrize(
    ("raw", "path", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_refused(raw: Any, path: str, message: str) -> None:
    [(field, said)] = problems(raw)
    assert field == path
    assert message in said


def test_case_names_are_unique() -> None:
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))


def test_an_exit_with_no_event_still_has_its_filters_checked() -> None:
    raw = journey(exitOn=[{"where": [{"property": "a", "op": "nope"}]}])
    assert [field for field, _ in problems(raw)] == [
        "definition.exitOn[0].event",
        "definition.exitOn[0].where[0].op",
    ]


def test_a_duplicate_id_names_both_steps() -> None:
    raw = journey(
        step("wait", {"hours": 1}, "first"),
        step("branch", {"if": PLAN, "then": [step("exit", {}, "first")]}, "b"),
    )
    [(field, message)] = problems(raw)
    assert field == "definition.steps[1].branch.then[0].id"
    assert '"first" is also the id of the step at definition.steps[0]' in message
    assert "an id of its own" in message


def test_a_segment_condition_in_a_branch_reports_its_path_within_the_journey() -> None:
    raw = journey(
        EXIT,
        step("branch", {"if": {"all": [{"trait": "plan", "op": "equals", "value": "pro"}]}}),
    )
    [(field, _)] = problems(raw)
    assert field == "definition.steps[1].branch.if.all[0].op"


def test_nesting_deeper_than_the_limit() -> None:
    path = "definition.steps[0]" + ".branch.then[0]" * MAX_NESTING
    assert problems(nested(MAX_NESTING + 1)) == [
        (path, f"steps may be nested at most {MAX_NESTING} levels deep")
    ]


def test_nesting_far_deeper_is_one_problem() -> None:
    assert len(problems(nested(MAX_NESTING * 10))) == 1


def test_more_steps_than_the_limit() -> None:
    many = [step("wait", {"hours": 1}, f"w{i}") for i in range(MAX_STEPS)]
    raw = journey(step("branch", {"if": PLAN, "then": many}, "b"))
    assert problems(raw) == [
        (
            "definition.steps",
            (
                f"a journey may have at most {MAX_STEPS} steps, counting those inside branches, "
                f"splits and waits; found {MAX_STEPS + 1}"
            ),
        )
    ]


def test_all_problems_are_reported_together() -> None:
    raw = {
        "trigger": {"event": "", "where": [{"property": "a", "op": "gt"}]},
        "exitOn": [{"event": "E", "within": 1}],
        "goal": {"event": "E", "withinDays": 0},
        "reentry": "twice",
        "steps": [
            {"wait": {"hours": 0}},
            {"id": "x", "send": {"templateId": "T", "purpose": "marketing", "fromEmail": "a"}},
            {"id": "x", "split": [{"weight": 0, "steps": [{"id": "y", "exit": 1}]}]},
        ],
        "version": 2,
    }
    assert [field for field, _ in problems(raw)] == [
        "definition.version",
        "definition.trigger.event",
        "definition.trigger.where[0].value",
        "definition.steps[0].id",
        "definition.steps[0].wait",
        "definition.steps[1].send.templateId",
        "definition.steps[1].send.fromEmail",
        "definition.steps[2].id",
        "definition.steps[2].split",
        "definition.steps[2].split[0].weight",
        "definition.steps[2].split[0].steps[0].exit",
        "definition.exitOn[0].within",
        "definition.goal.withinDays",
        "definition.reentry",
    ]


def test_the_error_carries_every_problem_and_leads_with_the_first() -> None:
    with pytest.raises(DefinitionError) as caught:
        read(journey(trigger={"inactiveDays": 0}, reentry="no"))
    error = caught.value
    assert isinstance(error, ValidationError)
    assert error.code == "INVALID"
    assert error.errors[0] == FieldError(
        index=None,
        field="definition.trigger.inactiveDays",
        message='"inactiveDays" must be a whole number of days from 1 to 3650',
        code="INVALID",
    )
    assert [e.field for e in error.errors] == [
        "definition.trigger.inactiveDays",
        "definition.reentry",
    ]
    assert (error.field, error.message) == (error.errors[0].field, error.errors[0].message)


def test_a_segment_definition_can_be_read_under_another_root() -> None:
    bad = {"not": {"trait": "plan", "op": "eq"}}
    with pytest.raises(DefinitionError) as caught:
        segments.parse(bad, segment_id=SEGMENT_IDS.get, root="definition.steps[1].branch.if")
    assert [e.field for e in caught.value.errors] == ["definition.steps[1].branch.if.not.value"]
    with pytest.raises(DefinitionError) as caught:
        segments.parse(bad, segment_id=SEGMENT_IDS.get)
    assert [e.field for e in caught.value.errors] == ["definition.not.value"]


# --- step ids ----------------------------------------------------------------------


def ids(raw: Any) -> list[str]:
    """The step ids of a raw definition in reading order."""
    found: list[str] = []

    def visit(steps: Any) -> None:
        for item in steps or []:
            found.append(item.get("id"))
            for kind in ("branch", "waitFor"):
                if kind in item:
                    visit(item[kind].get("then"))
                    visit(item[kind].get("else"))
            for path in item.get("split", []):
                visit(path.get("steps"))

    visit(raw["steps"])
    return found


def bare(raw: Any) -> Any:
    """The definition with every step id removed."""
    copied = copy.deepcopy(raw)

    def visit(steps: Any) -> None:
        for item in steps or []:
            item.pop("id", None)
            for kind in ("branch", "waitFor"):
                if kind in item:
                    visit(item[kind].get("then"))
                    visit(item[kind].get("else"))
            for path in item.get("split", []):
                visit(path.get("steps"))

    visit(copied["steps"])
    return copied


EVERY_KIND = journey(
    step("wait", {"hours": 1}, "a"),
    step("send", SEND, "b"),
    step(
        "branch",
        {
            "if": PLAN,
            "then": [step("exit", {}, "c")],
            "else": [step("wait", {"until": "09:00"}, "d")],
        },
        "e",
    ),
    step("split", [{"weight": 1, "steps": [step("exit", {}, "f")]}, {"weight": 1}], "g"),
    step(
        "waitFor",
        {
            "event": "E",
            "timeout": {"days": 1},
            "then": [step("exit", {}, "h")],
            "else": [step("exit", {}, "i")],
        },
        "j",
    ),
    step("exit", {}, "k"),
)


def test_new_ids_are_numbered_in_reading_order() -> None:
    raw = bare(EVERY_KIND)
    given_ids = with_step_ids(raw)
    assert ids(given_ids) == [f"s{n}" for n in range(1, 12)]
    assert raw == bare(EVERY_KIND)  # the input is left alone
    assert len(walk(read(given_ids).steps)) == 11


def test_ids_are_kept_and_new_ones_count_past_the_largest() -> None:
    raw = journey(
        {"id": "intro", "wait": {"hours": 1}},
        {"send": SEND},
        {"id": "s7", "exit": {}},
        {"id": None, "exit": {}},
        {"id": "s03", "exit": {}},
    )
    assert ids(with_step_ids(raw)) == ["intro", "s8", "s7", "s9", "s03"]


def test_new_ids_never_reuse_one_of_the_previous_version() -> None:
    first = with_step_ids(journey({"wait": {"hours": 1}}, {"send": SEND}, {"exit": {}}))
    assert ids(first) == ["s1", "s2", "s3"]
    edited = copy.deepcopy(first)
    assert isinstance(edited, dict)
    del edited["steps"][2]  # s3 removed
    edited["steps"].insert(1, {"wait": {"days": 1}})
    second = with_step_ids(edited, first)
    assert ids(second) == ["s1", "s4", "s2"]
    third = with_step_ids(journey({"exit": {}}), second)
    assert ids(third) == ["s5"]


def test_a_new_id_skips_one_already_taken() -> None:
    raw = journey({"id": "s2", "exit": {}}, {"exit": {}}, {"id": "s3", "exit": {}})
    assert ids(with_step_ids(raw, journey({"id": "s1", "exit": {}}))) == ["s2", "s4", "s3"]


def test_huge_numbers_do_not_make_ids_too_long() -> None:
    huge = "s" + "9" * 40
    given_ids = with_step_ids(journey({"id": huge, "exit": {}}, {"exit": {}}))
    assert ids(given_ids) == [huge, "s1"]


def test_assigning_ids_twice_changes_nothing() -> None:
    once = with_step_ids(bare(EVERY_KIND))
    assert with_step_ids(once) == once
    assert with_step_ids(once, once) == once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("steps", "steps"),
        ([{"exit": {}}], [{"exit": {}}]),
        ({"trigger": {"event": "E"}}, {"trigger": {"event": "E"}}),
        ({"steps": "wait"}, {"steps": "wait"}),
        ({"steps": ["wait", 1, None]}, {"steps": ["wait", 1, None]}),
        (
            {"steps": [{"branch": "no"}, {"split": {"weight": 1}}, {"waitFor": [{"exit": {}}]}]},
            {
                "steps": [
                    {"branch": "no", "id": "s1"},
                    {"split": {"weight": 1}, "id": "s2"},
                    {"waitFor": [{"exit": {}}], "id": "s3"},
                ]
            },
        ),
        (
            {"steps": [{"split": ["x", {"steps": 1}]}]},
            {"steps": [{"split": ["x", {"steps": 1}], "id": "s1"}]},
        ),
    ],
)
def test_malformed_input_is_left_as_it_is(raw: Any, expected: Any) -> None:
    assert with_step_ids(raw) == expected


def test_a_malformed_previous_version_is_ignored() -> None:
    assert ids(with_step_ids(journey({"exit": {}}), "garbage")) == ["s1"]


def test_steps_deeper_than_the_limit_get_no_id() -> None:
    deepest = bare(nested(MAX_NESTING + 1))
    given_ids = with_step_ids(deepest)
    assert ids(given_ids).count(None) == 1  # type: ignore[arg-type]
    [(field, _)] = problems(given_ids)
    assert field.endswith(".branch.then[0]")  # type: ignore[union-attr]


def tree(depth: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    leaf = st.builds(
        lambda i: {"exit": {}} if i is None else {"id": i, "exit": {}},
        st.one_of(st.none(), st.sampled_from(["s1", "s2", "s5", "s10", "a"])),
    )
    if depth == 0:
        return st.lists(leaf, max_size=3)
    inner = tree(depth - 1)
    branch = st.builds(
        lambda then, other: {"branch": {"if": PLAN, "then": then, "else": other}}, inner, inner
    )
    split = st.builds(
        lambda a, b: {"split": [{"weight": 1, "steps": a}, {"weight": 1, "steps": b}]}, inner, inner
    )
    return st.lists(st.one_of(leaf, branch, split), min_size=1, max_size=3)


@given(tree(2), tree(2))
def test_generated_ids_are_unique_and_fresh(
    steps: list[dict[str, Any]], before: list[dict[str, Any]]
) -> None:
    raw = journey(*steps)
    previous = with_step_ids(journey(*before))
    given_ids = with_step_ids(raw, previous)
    old, new = ids(raw), ids(given_ids)
    kept = [n for o, n in zip(old, new, strict=True) if o is not None]
    assert kept == [o for o in old if o is not None]
    fresh = [n for o, n in zip(old, new, strict=True) if o is None]
    assert len(set(fresh)) == len(fresh)
    assert not set(fresh) & (set(old) | set(ids(previous)))


# --- the JSON Schema -----------------------------------------------------------------


def test_the_schema_is_a_2020_12_schema() -> None:
    found = schema()
    jsonschema.Draft202012Validator.check_schema(found)
    assert found["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads(json.dumps(found)) == found


def test_the_schema_embeds_the_segment_definitions() -> None:
    found = schema()
    for name, definition in segments.SCHEMA["$defs"].items():
        assert found["$defs"][name] == definition
    assert found["$defs"]["branch"]["properties"]["branch"]["properties"]["if"] == {
        "$ref": "#/$defs/node"
    }


def test_the_schema_is_a_copy() -> None:
    schema()["$defs"].clear()
    assert schema()["$defs"]


def test_the_schema_lists_the_triggers_and_steps() -> None:
    found = schema()["$defs"]
    assert [ref["$ref"] for ref in found["step"]["oneOf"]] == [
        f"#/$defs/{kind}" for kind in ("wait", "send", "branch", "split", "waitFor", "exit")
    ]
    assert len(found["trigger"]["oneOf"]) == 5


VALID = [
    ABANDONED_CART,
    EVERY_KIND,
    bare(EVERY_KIND),  # what a client sends: the ids come when it is saved
    nested(MAX_NESTING),
    *(journey(trigger=t[1]) for t in TRIGGERS),
    *(journey(s[1]) for s in STEPS),
]


@pytest.mark.parametrize("raw", VALID)
def test_the_schema_accepts_what_parse_accepts(raw: dict[str, Any]) -> None:
    read(with_step_ids(raw))
    VALIDATOR.validate(raw)


# The schema cannot see these: whether an id names a segment or a template, an
# email address (format is an annotation), an integral float (JSON Schema's
# integers include 7.0), a sum of units, NaN or infinity (not JSON), the
# nesting and the count of steps across lists, ids being unique, and whether
# ids were assigned (the schema describes what a client sends, before saving).
SCHEMA_BLIND = {
    "trigger-segment-unknown",
    "trigger-inactive-float",
    "step-no-id",
    "step-null-id",
    "step-id-newline",  # Python's re reads "$" as before a final newline; ECMA-262 does not
    "wait-integral-float",
    "wait-too-long-summed",
    "wait-huge",
    "send-template-missing",
    "send-template-unknown",
    "send-from-bad",
    "send-reply-to-bad",
    "branch-if-segment",
    "split-weight-inf",
    "split-path-steps",
}
INVALID = [(name, raw) for name, raw, _, _ in CASES if name not in SCHEMA_BLIND]


@pytest.mark.parametrize("raw", [r for _, r in INVALID], ids=[n for n, _ in INVALID])
def test_parse_and_the_schema_both_refuse(raw: Any) -> None:
    with pytest.raises(DefinitionError):
        read(raw)
    assert not VALIDATOR.is_valid(raw)


def test_what_the_schema_cannot_see_is_still_refused() -> None:
    for name, raw, _, _ in CASES:
        if name in SCHEMA_BLIND:
            with pytest.raises(DefinitionError):
                read(raw)


# --- event matches -------------------------------------------------------------------

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def match_of(trigger: dict[str, Any]) -> EventMatch:
    found = read(journey(trigger=trigger)).trigger
    assert isinstance(found, EventTrigger)
    return found.match


@pytest.mark.parametrize(
    ("where", "name", "properties", "expected"),
    [
        ([], "Order Completed", {}, True),
        ([], "Order Refunded", {}, False),
        ([], None, {}, False),
        ([{"property": "total", "op": "gt", "value": 50}], "Order Completed", {"total": 60}, True),
        ([{"property": "total", "op": "gt", "value": 50}], "Order Completed", {"total": 40}, False),
        (
            [{"property": "total", "op": "gt", "value": 50}],
            "Order Completed",
            {"total": "60"},
            False,
        ),
        ([{"property": "total", "op": "gt", "value": 50}], "Order Completed", {}, False),
        ([{"property": "coupon", "op": "not_exists"}], "Order Completed", {"coupon": None}, True),
        (
            [{"property": "items.0.sku", "op": "eq", "value": "A1"}],
            "Order Completed",
            {"items": [{"sku": "A1"}]},
            True,
        ),
        (
            [{"property": "paidAt", "op": "within", "value": {"days": 1}}],
            "Order Completed",
            {"paidAt": "2024-06-01T00:00:00Z"},
            True,
        ),
        (
            [{"property": "paidAt", "op": "within", "value": {"days": 1}}],
            "Order Completed",
            {"paidAt": "2024-05-30T00:00:00Z"},
            False,
        ),
        (
            [
                {"property": "total", "op": "gt", "value": 50},
                {"property": "currency", "op": "eq", "value": "EUR"},
            ],
            "Order Completed",
            {"total": 60, "currency": "USD"},
            False,
        ),
    ],
)
def test_event_matches(
    where: list[Any], name: str | None, properties: dict[str, Any], expected: bool
) -> None:
    match = match_of({"event": "Order Completed", "where": where})
    assert event_matches(match, name, properties, NOW) is expected


def test_event_matches_agrees_with_a_segment_counting_events() -> None:
    from cdp.segments.evaluate import EventFact, ProfileFacts, evaluate

    def contact(channel: str, purpose: str) -> Any:
        raise AssertionError("an event condition asks no contact gate")

    where = [{"property": "total", "op": "between", "value": [10, 20]}]
    node = segments.parse({"event": "E", "where": where}, segment_id=SEGMENT_IDS.get)
    assert isinstance(node, EventCondition)
    match = match_of({"event": "E", "where": where})
    for total in (5, 10, 15, 20, 25, "15", None):
        event = EventFact("E", NOW, {"total": total})
        facts = ProfileFacts({}, {}, frozenset(), (event,), frozenset(), contact)
        assert event_matches(match, "E", event.properties, NOW) is evaluate(node, facts, NOW)
