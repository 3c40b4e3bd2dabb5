"""Segment definitions: parse's rules and paths, to_json's canonical form, and the JSON Schema."""

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jsonschema
import pytest
from hypothesis import HealthCheck, find, given, settings

from cdp.segments.definition import SCHEMA, DefinitionError, parse, to_json
from cdp.segments.model import (
    COMPUTED_FIELDS,
    COUNT_OPS,
    MAX_CHILDREN,
    MAX_DEPTH,
    MAX_IN_VALUES,
    MAX_WINDOW_DAYS,
    VALUE_OPS,
    All,
    AnyOf,
    Comparison,
    ComputedCondition,
    ContactableCondition,
    EventCondition,
    IdentifierCondition,
    Node,
    Not,
    PropertyFilter,
    SegmentCondition,
    TraitCondition,
)
from domain.errors import FieldError, ValidationError
from tests.cdp.segments.strategies import definitions

VIP = UUID("11111111-1111-1111-1111-111111111111")
CHURNED = UUID("22222222-2222-2222-2222-222222222222")
SEGMENT_REFS = {VIP: "Segment:vip", CHURNED: "Segment:churned"}
SEGMENT_IDS = {ref: uuid for uuid, ref in SEGMENT_REFS.items()}
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

PLAN = {"trait": "plan", "op": "eq", "value": "pro"}


def segment_id(text: str) -> UUID | None:
    return SEGMENT_IDS.get(text)


def segment_ref(uuid: UUID) -> str:
    return SEGMENT_REFS[uuid]


def read(definition: Any) -> Node:
    return parse(definition, segment_id=segment_id)


def problems(definition: Any) -> list[tuple[str | None, str]]:
    with pytest.raises(DefinitionError) as caught:
        read(definition)
    return [(e.field, e.message) for e in caught.value.errors]


def trait(path: str, op: str, value: Any = None) -> TraitCondition:
    return TraitCondition(tuple(path.split(".")), Comparison(op, value))


def computed(name: str, op: str, value: Any = None) -> ComputedCondition:
    return ComputedCondition(COMPUTED_FIELDS[name], Comparison(op, value))


def nested_nots(levels: int) -> dict[str, Any]:
    definition: dict[str, Any] = PLAN
    for _ in range(levels):
        definition = {"not": definition}
    return definition


# --- the seed segments --------------------------------------------------------

NEW_SUBSCRIBERS = {
    "all": [
        {"contactable": {"channel": "email", "purpose": "newsletter"}},
        {"computed": "firstSeen", "op": "within", "value": {"days": 7}},
    ]
}
HIGH_VALUE = {"computed": "totalRevenue", "op": "gte", "value": 500}
CART_ABANDONERS = {
    "all": [
        {"event": "Product Added", "within": {"hours": 24}},
        {"event": "Order Completed", "within": {"hours": 24}, "count": {"op": "eq", "value": 0}},
    ]
}
INFREQUENT_BUYERS = {
    "all": [
        {"computed": "orderCount", "op": "between", "value": [1, 2]},
        {"computed": "lastOrderAt", "op": "before", "value": {"days": 90}},
    ]
}
SEEDS = [NEW_SUBSCRIBERS, HIGH_VALUE, CART_ABANDONERS, INFREQUENT_BUYERS]


def test_new_subscribers() -> None:
    assert read(NEW_SUBSCRIBERS) == All(
        (
            ContactableCondition(channel="email", purpose="newsletter"),
            computed("firstSeen", "within", timedelta(days=7)),
        )
    )


def test_high_value_customers() -> None:
    assert read(HIGH_VALUE) == computed("totalRevenue", "gte", 500)


def test_cart_abandoners() -> None:
    day = timedelta(hours=24)
    assert read(CART_ABANDONERS) == All(
        (
            EventCondition("Product Added", (), Comparison("gte", 1), day),
            EventCondition("Order Completed", (), Comparison("eq", 0), day),
        )
    )


def test_infrequent_buyers() -> None:
    assert read(INFREQUENT_BUYERS) == All(
        (
            computed("orderCount", "between", (1, 2)),
            computed("lastOrderAt", "before", timedelta(days=90)),
        )
    )


@pytest.mark.parametrize("definition", SEEDS)
def test_the_seeds_pass_the_schema(definition: dict[str, Any]) -> None:
    assert list(VALIDATOR.iter_errors(definition)) == []


# --- what parse builds ----------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "stored"),
    [
        ("eq", "pro", "pro"),
        ("neq", 1.5, 1.5),
        ("eq", False, False),
        ("contains", "Berlin", "Berlin"),
        ("gt", 3, 3),
        ("lte", "m", "m"),
        ("starts_with", "pr", "pr"),
        ("in", ["pro", 1, True], ("pro", 1, True)),
        ("not_in", [0.5], (0.5,)),
        ("between", [1, 1.5], (1, 1.5)),
        ("between", ["a", "a"], ("a", "a")),
        ("within", {"hours": 36}, timedelta(hours=36)),
        ("before", {"days": 30}, timedelta(days=30)),
    ],
)
def test_comparison_values(op: str, value: Any, stored: Any) -> None:
    node = read({"trait": "score", "op": op, "value": value})
    assert node == trait("score", op, stored)
    assert type(node.comparison.value) is type(stored)  # type: ignore[union-attr]


@pytest.mark.parametrize("op", ["exists", "not_exists"])
def test_presence_takes_no_value(op: str) -> None:
    assert read({"trait": "plan", "op": op}) == trait("plan", op, None)


def test_dotted_paths_are_split() -> None:
    assert read({"trait": "items.0.sku", "op": "exists"}) == TraitCondition(
        ("items", "0", "sku"), Comparison("exists")
    )


def test_computed_instants_are_datetimes() -> None:
    node = read({"computed": "lastSeen", "op": "gt", "value": "2024-06-15T14:00:00+02:00"})
    assert node == computed("lastSeen", "gt", datetime(2024, 6, 15, 12, tzinfo=UTC))
    node = read({"computed": "firstSeen", "op": "between", "value": ["2024-01-01", "2024-01-02"]})
    bounds = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))
    assert node == computed("firstSeen", "between", bounds)


def test_an_event_with_everything() -> None:
    node = read(
        {
            "event": "Order Completed",
            "where": [
                {"property": "revenue", "op": "gte", "value": 40},
                {"property": "items.0.sku", "op": "exists"},
            ],
            "count": {"op": "gte", "value": 2},
            "within": {"days": 30},
        }
    )
    assert node == EventCondition(
        "Order Completed",
        (
            PropertyFilter(("revenue",), Comparison("gte", 40)),
            PropertyFilter(("items", "0", "sku"), Comparison("exists")),
        ),
        Comparison("gte", 2),
        timedelta(days=30),
    )


def test_an_event_with_defaults() -> None:
    assert read({"event": "Page Viewed", "where": []}) == EventCondition("Page Viewed")


def test_other_leaves() -> None:
    node = read(
        {
            "any": [
                {"segment": "Segment:vip"},
                {"contactable": {"channel": " Email ", "purpose": "NewsLetter"}},
                {"identifier": "user_id"},
                {"not": {"segment": "Segment:churned"}},
            ]
        }
    )
    assert node == AnyOf(
        (
            SegmentCondition(VIP),
            ContactableCondition(channel="email", purpose="newsletter"),
            IdentifierCondition("user_id"),
            Not(SegmentCondition(CHURNED)),
        )
    )


def test_segment_ids_come_from_the_caller() -> None:
    seen: list[str] = []

    def decode(text: str) -> UUID | None:
        seen.append(text)
        return VIP if text == "anything" else None

    assert parse({"segment": "anything"}, segment_id=decode) == SegmentCondition(VIP)
    assert seen == ["anything"]


@pytest.mark.parametrize(
    "definition",
    [
        {"any": [PLAN] * MAX_CHILDREN},
        {"trait": "t", "op": "in", "value": list(range(MAX_IN_VALUES))},
        {"trait": "t", "op": "within", "value": {"days": MAX_WINDOW_DAYS}},
        {"trait": "t", "op": "before", "value": {"hours": MAX_WINDOW_DAYS * 24}},
        {"trait": "a" * 255, "op": "exists"},
        {"trait": "a." + "b" * 253, "op": "exists"},
        {"event": "E" * 200},
        {"event": "E", "where": [{"property": "p", "op": "exists"}] * MAX_CHILDREN},
        {"event": "E", "count": {"op": "lt", "value": 1}},
        {"event": "E", "count": {"op": "lte", "value": 0}},
        {"identifier": "k" * 64},
        {"contactable": {"channel": "c" * 64, "purpose": "p"}},
        nested_nots(MAX_DEPTH - 1),
    ],
    ids=[
        "max-children",
        "max-in-values",
        "max-days",
        "max-hours",
        "longest-trait",
        "longest-dotted-trait",
        "longest-event",
        "max-filters",
        "count-lt-1",
        "count-lte-0",
        "longest-identifier",
        "longest-contact-name",
        "max-depth",
    ],
)
def test_limits_are_inclusive(definition: dict[str, Any]) -> None:
    read(definition)
    assert VALIDATOR.is_valid(definition)


# --- what parse refuses, where, and why ---------------------------------------------

CASES: list[tuple[str, Any, str, str]] = [
    # nodes
    ("node-a-list", ["trait"], "definition", "must be a JSON object"),
    ("node-null", None, "definition", "found null"),
    ("node-no-kind", {}, "definition", "exactly one of the keys all, any, not,"),
    ("node-misspelt-kind", {"trat": "plan"}, "definition", 'found none (the keys are "trat")'),
    (
        "node-two-kinds",
        {"trait": "plan", "op": "exists", "event": "Order Completed"},
        "definition",
        'identifier; found "trait" and "event"',
    ),
    (
        "unknown-key",
        {"trait": "plan", "op": "exists", "vlaue": 1},
        "definition.vlaue",
        'unknown key "vlaue"',
    ),
    ("unknown-key-on-group", {"all": [PLAN], "x": 1}, "definition.x", 'unknown key "x"'),
    ("all-empty", {"all": []}, "definition.all", '"all" must be a non-empty list'),
    ("any-not-a-list", {"any": PLAN}, "definition.any", '"any" must be a non-empty list'),
    (
        "too-many-children",
        {"any": [PLAN] * (MAX_CHILDREN + 1)},
        "definition.any",
        "at most 100 conditions",
    ),
    ("not-a-list", {"not": [PLAN]}, "definition.not", "must be a JSON object"),
    ("child", {"all": [PLAN, "plan"]}, "definition.all[1]", "must be a JSON object"),
    # trait names
    (
        "trait-empty",
        {"trait": "", "op": "exists"},
        "definition.trait",
        '"trait" must be a non-empty name',
    ),
    (
        "trait-number",
        {"trait": 5, "op": "exists"},
        "definition.trait",
        '"trait" must be a non-empty name',
    ),
    (
        "trait-empty-part",
        {"trait": "address..city", "op": "exists"},
        "definition.trait",
        "has an empty part",
    ),
    (
        "trait-leading-dot",
        {"trait": ".city", "op": "exists"},
        "definition.trait",
        "has an empty part",
    ),
    (
        "trait-trailing-dot",
        {"trait": "city.", "op": "exists"},
        "definition.trait",
        "has an empty part",
    ),
    (
        "trait-too-long",
        {"trait": "a" * 256, "op": "exists"},
        "definition.trait",
        "at most 255 characters",
    ),
    ("trait-nul", {"trait": "a\x00", "op": "exists"}, "definition.trait", "NUL"),
    # operators
    ("op-missing", {"trait": "plan"}, "definition.op", '"op" is required; use one of: eq, neq'),
    (
        "op-unknown",
        {"trait": "plan", "op": "equals", "value": 1},
        "definition.op",
        'unknown operator "equals"; use one of: eq, neq, gt, gte, lt, lte, in, not_in, contains, starts_with, exists, not_exists, between, within, before',
    ),
    (
        "op-not-a-string",
        {"trait": "plan", "op": 1, "value": 1},
        "definition.op",
        "unknown operator 1",
    ),
    # values
    (
        "eq-null",
        {"trait": "t", "op": "eq", "value": None},
        "definition.value",
        '"value" must be a string, a number or true/false for "eq"',
    ),
    (
        "eq-list",
        {"trait": "t", "op": "eq", "value": [1]},
        "definition.value",
        '"value" must be a string, a number or true/false for "eq"',
    ),
    ("neq-object", {"trait": "t", "op": "neq", "value": {}}, "definition.value", 'for "neq"'),
    ("eq-nan", {"trait": "t", "op": "eq", "value": float("nan")}, "definition.value", 'for "eq"'),
    ("eq-inf", {"trait": "t", "op": "eq", "value": float("inf")}, "definition.value", 'for "eq"'),
    (
        "contains-null",
        {"trait": "t", "op": "contains", "value": None},
        "definition.value",
        'for "contains"',
    ),
    ("eq-missing", {"trait": "t", "op": "eq"}, "definition.value", '"value" is required for "eq"'),
    (
        "gt-bool",
        {"trait": "t", "op": "gt", "value": True},
        "definition.value",
        '"value" must be a number or a string for "gt"',
    ),
    (
        "lte-null",
        {"trait": "t", "op": "lte", "value": None},
        "definition.value",
        '"value" must be a number or a string for "lte"',
    ),
    ("gte-list", {"trait": "t", "op": "gte", "value": [1]}, "definition.value", 'for "gte"'),
    (
        "starts-with-empty",
        {"trait": "t", "op": "starts_with", "value": ""},
        "definition.value",
        '"value" must be a non-empty string for "starts_with"',
    ),
    (
        "starts-with-number",
        {"trait": "t", "op": "starts_with", "value": 1},
        "definition.value",
        "non-empty string",
    ),
    (
        "in-empty",
        {"trait": "t", "op": "in", "value": []},
        "definition.value",
        '"value" must be a non-empty list of strings, numbers or true/false for "in"',
    ),
    ("in-scalar", {"trait": "t", "op": "in", "value": "pro"}, "definition.value", "non-empty list"),
    (
        "in-null-item",
        {"trait": "t", "op": "in", "value": [1, None]},
        "definition.value[1]",
        'each value for "in" must be a string, a number or true/false',
    ),
    (
        "not-in-list-item",
        {"trait": "t", "op": "not_in", "value": [[1]]},
        "definition.value[0]",
        'each value for "not_in"',
    ),
    (
        "in-too-many",
        {"trait": "t", "op": "in", "value": list(range(MAX_IN_VALUES + 1))},
        "definition.value",
        "at most 1000 values",
    ),
    (
        "between-one",
        {"trait": "t", "op": "between", "value": [1]},
        "definition.value",
        '"value" must be a list of two numbers or two strings, the lower first, for "between"',
    ),
    (
        "between-three",
        {"trait": "t", "op": "between", "value": [1, 2, 3]},
        "definition.value",
        "list of two numbers or two strings",
    ),
    (
        "between-mixed",
        {"trait": "t", "op": "between", "value": [1, "a"]},
        "definition.value",
        "list of two numbers or two strings",
    ),
    (
        "between-bools",
        {"trait": "t", "op": "between", "value": [False, True]},
        "definition.value",
        "list of two numbers or two strings",
    ),
    (
        "between-not-a-list",
        {"trait": "t", "op": "between", "value": 1},
        "definition.value",
        "list of two",
    ),
    (
        "between-reversed",
        {"trait": "t", "op": "between", "value": [3, 1]},
        "definition.value",
        '"between" takes the lower bound first; 3 is above 1',
    ),
    (
        "between-reversed-strings",
        {"trait": "t", "op": "between", "value": ["b", "a"]},
        "definition.value",
        '"b" is above "a"',
    ),
    (
        "exists-with-value",
        {"trait": "t", "op": "exists", "value": 1},
        "definition.value",
        '"exists" takes no "value"',
    ),
    (
        "not-exists-with-null",
        {"trait": "t", "op": "not_exists", "value": None},
        "definition.value",
        '"not_exists" takes no "value"',
    ),
    # windows
    (
        "window-number",
        {"trait": "t", "op": "within", "value": 7},
        "definition.value",
        '"value" must be {"days": N} or {"hours": N}',
    ),
    (
        "window-empty",
        {"trait": "t", "op": "within", "value": {}},
        "definition.value",
        'exactly one of the keys "days" or "hours"',
    ),
    (
        "window-both",
        {"trait": "t", "op": "before", "value": {"days": 1, "hours": 2}},
        "definition.value",
        'exactly one of the keys "days" or "hours"',
    ),
    (
        "window-zero-days",
        {"trait": "t", "op": "within", "value": {"days": 0}},
        "definition.value.days",
        "a window must be at least 1 day or 1 hour",
    ),
    (
        "window-zero-hours",
        {"trait": "t", "op": "before", "value": {"hours": 0}},
        "definition.value.hours",
        "at least 1 day or 1 hour",
    ),
    (
        "window-negative",
        {"trait": "t", "op": "within", "value": {"days": -1}},
        "definition.value.days",
        "at least 1 day",
    ),
    (
        "window-too-many-days",
        {"trait": "t", "op": "within", "value": {"days": MAX_WINDOW_DAYS + 1}},
        "definition.value.days",
        "at most 3650 days",
    ),
    (
        "window-too-many-hours",
        {"trait": "t", "op": "within", "value": {"hours": MAX_WINDOW_DAYS * 24 + 1}},
        "definition.value.hours",
        "at most 3650 days (87600 hours)",
    ),
    (
        "window-fraction",
        {"trait": "t", "op": "within", "value": {"days": 1.5}},
        "definition.value.days",
        '"days" must be a whole number',
    ),
    (
        "window-float",
        {"trait": "t", "op": "within", "value": {"days": 7.0}},
        "definition.value.days",
        '"days" must be a whole number',
    ),
    (
        "window-bool",
        {"trait": "t", "op": "within", "value": {"hours": True}},
        "definition.value.hours",
        '"hours" must be a whole number',
    ),
    (
        "window-string",
        {"trait": "t", "op": "within", "value": {"days": "7"}},
        "definition.value.days",
        "whole number",
    ),
    (
        "window-unknown-key",
        {"trait": "t", "op": "within", "value": {"days": 1, "weeks": 1}},
        "definition.value.weeks",
        'unknown key "weeks"; a window has the keys days, hours',
    ),
    # NUL
    ("nul-value", {"trait": "t", "op": "eq", "value": "a\x00b"}, "definition.value", "NUL"),
    ("nul-in", {"trait": "t", "op": "in", "value": ["a", "\x00"]}, "definition.value[1]", "NUL"),
    (
        "nul-between",
        {"trait": "t", "op": "between", "value": ["\x00", "b"]},
        "definition.value[0]",
        "NUL",
    ),
    (
        "nul-starts-with",
        {"trait": "t", "op": "starts_with", "value": "\x00"},
        "definition.value",
        "NUL",
    ),
    # computed
    (
        "computed-unknown",
        {"computed": "revenue", "op": "gt", "value": 1},
        "definition.computed",
        'unknown computed trait "revenue"; use one of: orderCount, totalRevenue, averageOrderValue, firstSeen, lastSeen, lastOrderAt',
    ),
    (
        "computed-number",
        {"computed": 5, "op": "exists"},
        "definition.computed",
        "unknown computed trait 5",
    ),
    (
        "computed-number-string",
        {"computed": "orderCount", "op": "gt", "value": "5"},
        "definition.value",
        '"value" must be a number for "gt" on a computed trait "orderCount"',
    ),
    (
        "computed-number-bool",
        {"computed": "totalRevenue", "op": "eq", "value": True},
        "definition.value",
        'must be a number for "eq" on a computed trait "totalRevenue"',
    ),
    (
        "computed-number-within",
        {"computed": "orderCount", "op": "within", "value": {"days": 1}},
        "definition.op",
        '"within" does not apply on a computed trait "orderCount" (a number); use one of: eq, neq, gt, gte, lt, lte, in, not_in, between, exists, not_exists',
    ),
    (
        "computed-number-contains",
        {"computed": "orderCount", "op": "contains", "value": 1},
        "definition.op",
        '"contains" does not apply',
    ),
    (
        "computed-number-in-string",
        {"computed": "orderCount", "op": "in", "value": [1, "2"]},
        "definition.value[1]",
        'each value for "in" must be a number on a computed trait "orderCount"',
    ),
    (
        "computed-number-between-strings",
        {"computed": "averageOrderValue", "op": "between", "value": ["1", "2"]},
        "definition.value",
        "list of two numbers, the lower first",
    ),
    (
        "computed-number-between-reversed",
        {"computed": "orderCount", "op": "between", "value": [2, 1]},
        "definition.value",
        "lower bound first",
    ),
    (
        "computed-instant-eq",
        {"computed": "firstSeen", "op": "eq", "value": "2024-01-01"},
        "definition.op",
        '"eq" does not apply on a computed trait "firstSeen" (a date and time); use one of: gt, gte',
    ),
    (
        "computed-instant-words",
        {"computed": "firstSeen", "op": "gt", "value": "yesterday"},
        "definition.value",
        '"value" must be an ISO-8601 date or time such as "2024-01-31"',
    ),
    (
        "computed-instant-no-such-day",
        {"computed": "lastSeen", "op": "lt", "value": "2024-02-30"},
        "definition.value",
        "ISO-8601",
    ),
    (
        "computed-instant-number",
        {"computed": "lastSeen", "op": "lt", "value": 20240101},
        "definition.value",
        "ISO-8601",
    ),
    (
        "computed-instant-out-of-range",
        {"computed": "lastSeen", "op": "lt", "value": "1000-01-01T00:00+01:00"},
        "definition.value",
        "ISO-8601",
    ),
    (
        "computed-instant-between-reversed",
        {"computed": "lastOrderAt", "op": "between", "value": ["2024-02-01", "2024-01-01T00:00Z"]},
        "definition.value",
        "lower bound first",
    ),
    (
        "computed-instant-between-one",
        {"computed": "lastOrderAt", "op": "between", "value": ["2024-02-01"]},
        "definition.value",
        "list of two ISO-8601 dates or times",
    ),
    (
        "computed-instant-window",
        {"computed": "lastSeen", "op": "within", "value": {"days": 0}},
        "definition.value.days",
        "at least 1 day",
    ),
    # events
    (
        "event-empty",
        {"event": ""},
        "definition.event",
        '"event" must be an event name of 1 to 200 characters',
    ),
    ("event-too-long", {"event": "E" * 201}, "definition.event", "1 to 200 characters"),
    ("event-number", {"event": 5}, "definition.event", "1 to 200 characters"),
    ("event-nul", {"event": "E\x00"}, "definition.event", "NUL"),
    (
        "where-object",
        {"event": "E", "where": {}},
        "definition.where",
        '"where" must be a list of property filters',
    ),
    (
        "where-item-string",
        {"event": "E", "where": ["revenue"]},
        "definition.where[0]",
        "a property filter must be an object",
    ),
    (
        "where-no-property",
        {"event": "E", "where": [{"op": "exists"}]},
        "definition.where[0].property",
        '"property" is required',
    ),
    (
        "where-unknown-key",
        {"event": "E", "where": [{"property": "p", "op": "exists", "x": 1}]},
        "definition.where[0].x",
        'unknown key "x"; a property filter has the keys property, op, value',
    ),
    (
        "where-bad-path",
        {"event": "E", "where": [{"property": "a..b", "op": "exists"}]},
        "definition.where[0].property",
        "empty part",
    ),
    (
        "where-bad-value",
        {"event": "E", "where": [{"property": "p", "op": "gt", "value": True}]},
        "definition.where[0].value",
        'for "gt"',
    ),
    (
        "where-bad-op",
        {"event": "E", "where": [{"property": "p", "op": "is"}]},
        "definition.where[0].op",
        'unknown operator "is"',
    ),
    (
        "where-too-many",
        {"event": "E", "where": [{"property": "p", "op": "exists"}] * (MAX_CHILDREN + 1)},
        "definition.where",
        "at most 100 filters",
    ),
    ("count-number", {"event": "E", "count": 1}, "definition.count", '"count" must be an object'),
    (
        "count-no-value",
        {"event": "E", "count": {"op": "gte"}},
        "definition.count.value",
        '"value" of a count must be a whole number, 0 or more',
    ),
    (
        "count-negative",
        {"event": "E", "count": {"op": "gte", "value": -1}},
        "definition.count.value",
        "0 or more",
    ),
    (
        "count-bool",
        {"event": "E", "count": {"op": "gte", "value": True}},
        "definition.count.value",
        "whole number",
    ),
    (
        "count-float",
        {"event": "E", "count": {"op": "gte", "value": 1.0}},
        "definition.count.value",
        "whole number",
    ),
    (
        "count-no-op",
        {"event": "E", "count": {"value": 1}},
        "definition.count.op",
        '"op" is required; use one of: eq, neq, gt, gte, lt, lte',
    ),
    (
        "count-in",
        {"event": "E", "count": {"op": "in", "value": 1}},
        "definition.count.op",
        '"in" does not apply in a count',
    ),
    (
        "count-never",
        {"event": "E", "count": {"op": "lt", "value": 0}},
        "definition.count",
        'a count "lt 0" can never hold',
    ),
    (
        "count-unknown-key",
        {"event": "E", "count": {"op": "gte", "value": 1, "x": 1}},
        "definition.count.x",
        'unknown key "x"',
    ),
    (
        "within-zero",
        {"event": "E", "within": {"days": 0}},
        "definition.within.days",
        "a window must be at least 1 day or 1 hour",
    ),
    (
        "within-null",
        {"event": "E", "within": None},
        "definition.within",
        '"within" must be {"days": N} or {"hours": N}',
    ),
    (
        "within-both",
        {"event": "E", "within": {"days": 1, "hours": 1}},
        "definition.within",
        "exactly one of",
    ),
    # other leaves
    (
        "segment-unknown",
        {"segment": "Segment:nope"},
        "definition.segment",
        '"Segment:nope" is not a segment id',
    ),
    ("segment-number", {"segment": 5}, "definition.segment", "5 is not a segment id"),
    ("segment-nul", {"segment": "Segment:vip\x00"}, "definition.segment", "is not a segment id"),
    (
        "contactable-string",
        {"contactable": "email"},
        "definition.contactable",
        '"contactable" must be an object',
    ),
    (
        "contactable-no-purpose",
        {"contactable": {"channel": "email"}},
        "definition.contactable.purpose",
        '"purpose" is required',
    ),
    (
        "contactable-bad-channel",
        {"contactable": {"channel": "e mail", "purpose": "news"}},
        "definition.contactable.channel",
        "channel must be 1-64 characters of a-z, 0-9",
    ),
    (
        "contactable-any-channel",
        {"contactable": {"channel": "*", "purpose": "news"}},
        "definition.contactable.channel",
        "channel must be 1-64 characters",
    ),
    (
        "contactable-long-purpose",
        {"contactable": {"channel": "email", "purpose": "p" * 65}},
        "definition.contactable.purpose",
        "purpose must be 1-64 characters",
    ),
    (
        "contactable-number",
        {"contactable": {"channel": 1, "purpose": "news"}},
        "definition.contactable.channel",
        '"channel" must be a name',
    ),
    (
        "contactable-unknown-key",
        {"contactable": {"channel": "email", "purpose": "news", "via": 1}},
        "definition.contactable.via",
        'unknown key "via"',
    ),
    (
        "identifier-empty",
        {"identifier": ""},
        "definition.identifier",
        '"identifier" must be an identifier kind of 1 to 64 characters',
    ),
    (
        "identifier-too-long",
        {"identifier": "k" * 65},
        "definition.identifier",
        "1 to 64 characters",
    ),
    ("identifier-number", {"identifier": 1}, "definition.identifier", "1 to 64 characters"),
    ("identifier-nul", {"identifier": "email\x00"}, "definition.identifier", "NUL"),
]


@pytest.mark.parametrize(
    ("definition", "path", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_refused(definition: Any, path: str, message: str) -> None:
    [(field, said)] = problems(definition)
    assert field == path
    assert message in said


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"all": [PLAN, {"trait": "plan", "op": "equals", "value": 1}]}, "definition.all[1].op"),
        (
            {
                "all": [
                    {
                        "not": {
                            "event": "E",
                            "where": [
                                {"property": "a", "op": "exists"},
                                {"property": "b", "op": "exists"},
                                {"property": "c", "op": "eq", "value": None},
                            ],
                        }
                    }
                ]
            },
            "definition.all[0].not.where[2].value",
        ),
        (
            {"any": [PLAN, PLAN, PLAN, {"event": "E", "within": {"days": 0}}]},
            "definition.any[3].within.days",
        ),
        (
            {"not": {"any": [{"all": [PLAN, {"identifier": ""}]}]}},
            "definition.not.any[0].all[1].identifier",
        ),
    ],
)
def test_paths_lead_to_the_problem(definition: dict[str, Any], path: str) -> None:
    assert [field for field, _ in problems(definition)] == [path]


def test_nesting_deeper_than_the_limit() -> None:
    path = "definition" + ".not" * MAX_DEPTH
    assert problems(nested_nots(MAX_DEPTH)) == [
        (path, f"conditions may be nested at most {MAX_DEPTH} levels deep")
    ]


def test_all_problems_are_reported_together() -> None:
    definition = {
        "all": [
            {"trait": "a..b", "op": "equals", "vlaue": 1},
            {"trait": "plan", "event": "E"},
            {
                "event": "",
                "where": [{"property": "p", "op": "gt", "value": None}],
                "count": {"op": "lt", "value": 0},
                "within": {"weeks": 1},
            },
            {"computed": "revenue", "op": "is"},
            {"not": {"segment": "Segment:nope"}},
        ]
    }
    assert [field for field, _ in problems(definition)] == [
        "definition.all[0].vlaue",
        "definition.all[0].trait",
        "definition.all[0].op",
        "definition.all[1]",
        "definition.all[2].event",
        "definition.all[2].where[0].value",
        "definition.all[2].count",
        "definition.all[2].within.weeks",
        "definition.all[2].within",
        "definition.all[3].computed",
        "definition.all[3].op",
        "definition.all[4].not.segment",
    ]


def test_the_error_carries_every_problem_and_leads_with_the_first() -> None:
    with pytest.raises(DefinitionError) as caught:
        read({"any": [{"identifier": ""}, {"trait": "t", "op": "within", "value": {"days": 0}}]})
    error = caught.value
    assert isinstance(error, ValidationError)
    assert error.code == "INVALID"
    assert error.errors == [
        FieldError(
            index=None,
            field="definition.any[0].identifier",
            message='"identifier" must be an identifier kind of 1 to 64 characters, '
            'such as "email", "user_id" or "phone"',
            code="INVALID",
        ),
        FieldError(
            index=None,
            field="definition.any[1].value.days",
            message="a window must be at least 1 day or 1 hour",
            code="INVALID",
        ),
    ]
    assert (error.field, error.message) == (error.errors[0].field, error.errors[0].message)


def test_parse_leaves_its_input_alone() -> None:
    definition = copy.deepcopy(CART_ABANDONERS)
    read(definition)
    assert definition == CART_ABANDONERS


# --- to_json ---------------------------------------------------------------------


def test_the_canonical_form_writes_defaults_out() -> None:
    node = read(
        {
            "all": [
                {"event": "Page Viewed", "where": []},
                {
                    "event": "Order Completed",
                    "within": {"hours": 48},
                    "where": [{"property": "sku", "op": "exists"}],
                },
                {"trait": "signedUpAt", "op": "within", "value": {"hours": 36}},
                {"computed": "firstSeen", "op": "gte", "value": "2024-06-15T14:00+02:00"},
                {
                    "computed": "lastSeen",
                    "op": "between",
                    "value": ["2024-01-01", "2024-01-01T00:00:00.5Z"],
                },
                {"trait": "tags", "op": "in", "value": ["a", 1]},
                {"segment": "Segment:vip"},
                {"contactable": {"channel": "EMAIL", "purpose": " newsletter"}},
            ]
        }
    )
    assert to_json(node, segment_ref=segment_ref) == {
        "all": [
            {"event": "Page Viewed", "count": {"op": "gte", "value": 1}},
            {
                "event": "Order Completed",
                "where": [{"property": "sku", "op": "exists"}],
                "count": {"op": "gte", "value": 1},
                "within": {"days": 2},
            },
            {"trait": "signedUpAt", "op": "within", "value": {"hours": 36}},
            {"computed": "firstSeen", "op": "gte", "value": "2024-06-15T12:00:00+00:00"},
            {
                "computed": "lastSeen",
                "op": "between",
                "value": ["2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00.500000+00:00"],
            },
            {"trait": "tags", "op": "in", "value": ["a", 1]},
            {"segment": "Segment:vip"},
            {"contactable": {"channel": "email", "purpose": "newsletter"}},
        ]
    }


@pytest.mark.parametrize("definition", SEEDS)
def test_the_seeds_round_trip(definition: dict[str, Any]) -> None:
    node = read(definition)
    assert read(to_json(node, segment_ref=segment_ref)) == node


def test_a_window_of_minutes_has_no_json() -> None:
    node = trait("t", "within", timedelta(minutes=90))
    with pytest.raises(ValueError, match="whole hours"):
        to_json(node, segment_ref=segment_ref)


# --- generated definitions --------------------------------------------------------

GENERATED = definitions(segment_ids=list(SEGMENT_IDS))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(GENERATED)
def test_generated_definitions_parse_and_pass_the_schema(definition: dict[str, Any]) -> None:
    node = read(definition)
    assert list(VALIDATOR.iter_errors(definition)) == []
    canonical = to_json(node, segment_ref=segment_ref)
    assert list(VALIDATOR.iter_errors(canonical)) == []


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(GENERATED)
def test_to_json_round_trips(definition: dict[str, Any]) -> None:
    node = read(definition)
    canonical = to_json(node, segment_ref=segment_ref)
    assert read(canonical) == node
    assert to_json(read(canonical), segment_ref=segment_ref) == canonical


def _objects(tree: Any) -> list[dict[str, Any]]:
    """Every JSON object in the tree, depth first."""
    if isinstance(tree, list):
        return [o for item in tree for o in _objects(item)]
    if not isinstance(tree, dict):
        return []
    return [tree, *(o for value in tree.values() for o in _objects(value))]


def _somewhere(wanted: Any) -> Any:
    return lambda definition: any(wanted(o) for o in _objects(definition))


@pytest.mark.parametrize("op", VALUE_OPS)
def test_the_strategy_reaches_every_operator(op: str) -> None:
    # a count is the only object with just "op" and "value"
    find(GENERATED, _somewhere(lambda o: o.get("op") == op and o.keys() != {"op", "value"}))


@pytest.mark.parametrize(
    ("wanted", "nested"),
    [
        (lambda o: "all" in o, True),
        (lambda o: "any" in o, True),
        (lambda o: "not" in o, True),
        (lambda o: "computed" in o and o["op"] in ("within", "before"), False),
        (lambda o: "computed" in o and o["op"] == "between", False),
        (lambda o: {"event", "where", "count", "within"} <= o.keys(), False),
        (lambda o: "segment" in o, False),
        (lambda o: "contactable" in o, False),
        (lambda o: "identifier" in o, False),
        (lambda o: "hours" in o, False),
        (lambda o: "days" in o, False),
    ],
    ids=[
        "all",
        "any",
        "not",
        "computed-window",
        "computed-between",
        "full-event",
        "segment",
        "contactable",
        "identifier",
        "hours",
        "days",
    ],
)
def test_the_strategy_reaches_every_kind(wanted: Any, nested: bool) -> None:
    if nested:
        # a group inside a group
        find(GENERATED, lambda d: any(wanted(o) for o in _objects(d)[1:]))
    else:
        find(GENERATED, _somewhere(wanted))


# --- the JSON Schema ----------------------------------------------------------------


def test_the_schema_is_a_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads(json.dumps(SCHEMA)) == SCHEMA


def test_each_node_kind_is_described_for_a_ui() -> None:
    kinds = [ref["$ref"].removeprefix("#/$defs/") for ref in SCHEMA["$defs"]["node"]["oneOf"]]
    assert kinds == [
        "all",
        "any",
        "not",
        "trait",
        "computed",
        "event",
        "segment",
        "contactable",
        "identifier",
    ]
    for kind in kinds:
        described = SCHEMA["$defs"][kind]
        assert described["title"]
        assert described["description"]
        assert described["required"][0] == kind


def test_the_schema_lists_operators_and_computed_traits() -> None:
    defs = SCHEMA["$defs"]
    assert defs["trait"]["properties"]["op"]["enum"] == list(VALUE_OPS)
    assert defs["propertyFilter"]["properties"]["op"]["enum"] == list(VALUE_OPS)
    assert defs["count"]["properties"]["op"]["enum"] == list(COUNT_OPS)
    assert defs["computed"]["properties"]["computed"]["enum"] == list(COMPUTED_FIELDS)


# The schema cannot see these: the order of bounds, a date that does not exist,
# a moment outside the years the canonical form can write, an integral float
# (JSON Schema's integers include 7.0), whether a string names a segment, and
# NaN or infinity (not JSON).
SCHEMA_BLIND = {
    "between-reversed",
    "between-reversed-strings",
    "computed-number-between-reversed",
    "computed-instant-between-reversed",
    "computed-instant-no-such-day",
    "computed-instant-out-of-range",
    "window-float",
    "count-float",
    "segment-unknown",
    "eq-nan",
    "eq-inf",
}
INVALID = [(name, definition) for name, definition, _, _ in CASES if name not in SCHEMA_BLIND]


@pytest.mark.parametrize("definition", [d for _, d in INVALID], ids=[n for n, _ in INVALID])
def test_parse_and_the_schema_both_refuse(definition: Any) -> None:
    with pytest.raises(DefinitionError):
        read(definition)
    assert not VALIDATOR.is_valid(definition)


@pytest.mark.parametrize("name", sorted(SCHEMA_BLIND))
def test_what_the_schema_cannot_see_is_still_refused(name: str) -> None:
    [definition] = [d for n, d, _, _ in CASES if n == name]
    with pytest.raises(DefinitionError):
        read(definition)
