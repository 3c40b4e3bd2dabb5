"""The reference semantics of segment definitions, and the explanation tree."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdp.segments.evaluate import EventFact, ProfileFacts, compare, evaluate, explain
from cdp.segments.model import (
    COMPUTED_FIELDS,
    MISSING,
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
from consent.model import Contactability

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)
VIP = UUID("11111111-1111-1111-1111-111111111111")
CHURNED = UUID("22222222-2222-2222-2222-222222222222")


def refuse(channel: str, purpose: str) -> Contactability:
    return Contactability(allowed=False, reason="no consent recorded")


def facts(
    *,
    traits: dict[str, Any] | None = None,
    computed: dict[str, Any] | None = None,
    kinds: tuple[str, ...] = (),
    events: tuple[EventFact, ...] = (),
    segments: tuple[UUID, ...] = (),
    contact: Any = refuse,
) -> ProfileFacts:
    return ProfileFacts(
        traits=traits or {},
        computed=computed or {},
        identifier_kinds=frozenset(kinds),
        events=events,
        segments=frozenset(segments),
        contact=contact,
    )


def trait(path: str, op: str, value: Any = None) -> TraitCondition:
    return TraitCondition(tuple(path.split(".")), Comparison(op, value))


def computed(name: str, op: str, value: Any = None) -> ComputedCondition:
    return ComputedCondition(COMPUTED_FIELDS[name], Comparison(op, value))


def holds(node: Node, profile: ProfileFacts, now: datetime = NOW) -> bool:
    """The verdict, checked to be the same from evaluate and from explain."""
    verdict = evaluate(node, profile, now)
    assert explain(node, profile, now)[0] is verdict
    return verdict


# --- compare: each operator with a hit, a miss, a missing value and a wrong type ---

WEEK = timedelta(days=7)


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("eq", "gold", "gold", True),
        ("eq", "gold", "silver", False),
        ("eq", "gold", MISSING, False),
        ("eq", "1", 1, False),
        ("eq", "Gold", "gold", False),
        ("neq", "gold", "silver", True),
        ("neq", "gold", "gold", False),
        ("neq", "gold", MISSING, False),
        ("neq", "1", 1, True),
        ("gt", 3, 5, True),
        ("gt", 3, 3, False),
        ("gt", 3, MISSING, False),
        ("gt", 3, "5", False),
        ("gte", 3, 3, True),
        ("gte", 3, 2.5, False),
        ("gte", 3, MISSING, False),
        ("gte", "3", 3, False),
        ("lt", 3, 2, True),
        ("lt", 3, 3, False),
        ("lt", 3, MISSING, False),
        ("lt", 3, True, False),
        ("lte", 3, 3.0, True),
        ("lte", 3, 4, False),
        ("lte", 3, MISSING, False),
        ("lte", 3, [1], False),
        ("in", ("a", "b"), "b", True),
        ("in", ("a", "b"), "c", False),
        ("in", ("a", "b"), MISSING, False),
        ("in", (1, 2), "1", False),
        ("in", (1, 2), 2.0, True),
        ("not_in", ("a", "b"), "c", True),
        ("not_in", ("a", "b"), "a", False),
        ("not_in", ("a", "b"), MISSING, False),
        ("not_in", (1, 2), "1", True),
        ("contains", "ell", "hello", True),
        ("contains", "xyz", "hello", False),
        ("contains", "ell", MISSING, False),
        ("contains", "1", 12, False),
        ("contains", 1, "12", False),
        ("contains", "a", ["a", "b"], True),
        ("contains", 2, [1, 2.0], True),
        ("contains", "c", ["a", "b"], False),
        ("contains", 1, ["1", True], False),
        ("contains", "a", {"a": 1}, False),
        ("starts_with", "he", "hello", True),
        ("starts_with", "lo", "hello", False),
        ("starts_with", "He", "hello", False),
        ("starts_with", "he", MISSING, False),
        ("starts_with", "1", 12, False),
        ("starts_with", "a", ["abc"], False),
        ("exists", None, "x", True),
        ("exists", None, False, True),
        ("exists", None, 0, True),
        ("exists", None, MISSING, False),
        ("not_exists", None, MISSING, True),
        ("not_exists", None, "", False),
        ("not_exists", None, 0, False),
        ("between", (1, 5), 1, True),
        ("between", (1, 5), 5.0, True),
        ("between", (1, 5), 3, True),
        ("between", (1, 5), 6, False),
        ("between", (1, 5), 0.5, False),
        ("between", (1, 5), MISSING, False),
        ("between", (1, 5), "3", False),
        ("between", (1, 5), True, False),
        ("between", ("a", "c"), "b", True),
        ("between", ("a", "c"), "d", False),
        ("within", WEEK, "2024-06-10", True),
        ("within", WEEK, "2024-06-01", False),
        ("within", WEEK, MISSING, False),
        ("within", WEEK, 20240610, False),
        ("within", WEEK, "yesterday", False),
        ("within", WEEK, "2024-06-16", False),
        ("before", WEEK, "2024-06-01", True),
        ("before", WEEK, "2024-06-10", False),
        ("before", WEEK, MISSING, False),
        ("before", WEEK, 20240601, False),
        ("before", WEEK, "2024-06-01 garbage", False),
    ],
)
def test_compare(op: str, value: Any, actual: Any, expected: bool) -> None:
    assert compare(Comparison(op, value), actual, NOW) is expected


def test_an_unknown_operator_is_an_error() -> None:
    with pytest.raises(ValueError, match="regex"):
        compare(Comparison("regex", "a"), "a", NOW)


def test_an_unknown_operator_is_an_error_even_on_a_missing_value() -> None:
    with pytest.raises(ValueError, match="regex"):
        compare(Comparison("regex", "a"), MISSING, NOW)


# --- two-valued logic ---------------------------------------------------------


@pytest.mark.parametrize("op", ["eq", "neq", "gt", "in", "not_in", "contains", "before"])
def test_not_of_a_comparison_on_a_missing_trait_holds(op: str) -> None:
    value: Any = {"in": ("x",), "not_in": ("x",), "before": WEEK}.get(op, "x")
    node = trait("plan", op, value)
    profile = facts(traits={"other": "x"})
    assert holds(node, profile) is False
    assert holds(Not(node), profile) is True


def test_json_null_is_missing() -> None:
    profile = facts(traits={"plan": None})
    assert holds(trait("plan", "exists"), profile) is False
    assert holds(trait("plan", "not_exists"), profile) is True
    assert holds(trait("plan", "neq", "gold"), profile) is False


def test_all_any_and_not() -> None:
    yes, no = trait("a", "eq", 1), trait("a", "eq", 2)
    profile = facts(traits={"a": 1})
    assert holds(All(()), profile) is True
    assert holds(AnyOf(()), profile) is False
    assert holds(All((yes, yes)), profile) is True
    assert holds(All((yes, no)), profile) is False
    assert holds(AnyOf((no, yes)), profile) is True
    assert holds(AnyOf((no, no)), profile) is False
    assert holds(Not(no), profile) is True
    assert holds(Not(Not(no)), profile) is False


# --- types --------------------------------------------------------------------


def test_true_is_not_one_and_one_equals_one_point_zero() -> None:
    assert holds(trait("n", "eq", 1), facts(traits={"n": True})) is False
    assert holds(trait("n", "eq", value=True), facts(traits={"n": 1})) is False
    assert holds(trait("n", "in", (1, 2)), facts(traits={"n": True})) is False
    assert holds(trait("n", "gte", 0), facts(traits={"n": True})) is False
    assert holds(trait("n", "eq", value=True), facts(traits={"n": True})) is True
    assert holds(trait("n", "eq", value=False), facts(traits={"n": 0})) is False
    assert holds(trait("n", "eq", 1), facts(traits={"n": 1.0})) is True
    assert holds(trait("n", "eq", 1.0), facts(traits={"n": 1})) is True


def test_a_number_never_equals_a_string() -> None:
    assert holds(trait("zip", "eq", "01234"), facts(traits={"zip": 1234})) is False
    assert holds(trait("zip", "gt", 100), facts(traits={"zip": "999"})) is False


@pytest.mark.parametrize(
    ("actual", "op", "value", "expected"),
    [
        ("Z", "lt", "a", True),  # upper case sorts before lower case
        ("a", "lt", "Z", False),
        ("é", "gt", "z", True),  # U+00E9 after U+007A
        ("10", "lt", "9", True),  # strings, not numbers
        ("abc", "lt", "abd", True),
        ("ab", "lt", "abc", True),
        ("", "lt", "a", True),
        ("Z", "between", ("A", "a"), True),
        ("b", "between", ("A", "a"), False),
    ],
)
def test_strings_order_by_code_point(actual: str, op: str, value: Any, expected: bool) -> None:
    assert holds(trait("s", op, value), facts(traits={"s": actual})) is expected


# --- paths --------------------------------------------------------------------

CART = {"items": [{"sku": "A"}, {"sku": "B"}, {"sku": "C"}], "meta": {"tags": ["x", "y"]}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("items.0.sku", "A"),
        ("items.2.sku", "C"),
        ("items.-1.sku", "C"),
        ("items.-3.sku", "A"),
        ("meta.tags.1", "y"),
        ("meta.tags.-2", "x"),
    ],
)
def test_array_index_paths(path: str, expected: str) -> None:
    profile = facts(traits={"cart": CART})
    assert holds(trait(f"cart.{path}", "eq", expected), profile) is True
    assert holds(trait(f"cart.{path}", "eq", expected + "!"), profile) is False


@pytest.mark.parametrize(
    "path", ["items.3.sku", "items.-4.sku", "items.x", "items.0.sku.z", "nope"]
)
def test_paths_that_lead_nowhere_are_missing(path: str) -> None:
    profile = facts(traits={"cart": CART})
    assert holds(trait(f"cart.{path}", "exists"), profile) is False
    assert holds(trait(f"cart.{path}", "not_exists"), profile) is True


def test_a_dotted_path_steps_into_objects() -> None:
    profile = facts(traits={"address": {"city": "Lyon"}})
    assert holds(trait("address.city", "eq", "Lyon"), profile) is True
    assert holds(trait("address", "contains", "Lyon"), profile) is False


# --- instants -----------------------------------------------------------------
# NOW - 7 days is 2024-06-08T12:00Z.


@pytest.mark.parametrize(
    ("stamp", "within"),
    [
        ("2024-06-08T13:00:00+02:00", False),  # 11:00Z
        ("2024-06-08T13:00:00", True),  # no zone: UTC
        ("2024-06-08T13:00:00Z", True),
        ("2024-06-08T07:00-05:00", True),  # 12:00Z, the boundary
        ("2024-06-08T06:59:59.999999-05:00", False),
        ("2024-06-08 12:30", True),
        ("2024-06-08", False),  # date only: midnight UTC
        ("2024-06-09", True),
        ("2024-06-15T14:00:00+02:00", True),  # 12:00Z, now
        ("2024-06-15T14:00:01+02:00", False),  # a second in the future
    ],
)
def test_instants_with_and_without_zones(stamp: str, within: bool) -> None:
    profile = facts(traits={"signup": stamp})
    assert holds(trait("signup", "within", WEEK), profile) is within


@pytest.mark.parametrize("stamp", ["2024-02-30", "2023-02-29T10:00:00Z", "2024-13-01", "2024-6-1"])
def test_invalid_dates_are_missing_for_within_and_before(stamp: str) -> None:
    profile = facts(traits={"d": stamp}, computed={"last_seen": stamp})
    for op in ("within", "before"):
        assert holds(trait("d", op, timedelta(days=10000)), profile) is False
        assert holds(Not(trait("d", op, timedelta(days=10000))), profile) is True
        assert holds(computed("lastSeen", op, DAY), profile) is False
    assert holds(computed("lastSeen", "exists"), profile) is False
    assert holds(computed("lastSeen", "not_exists"), profile) is True


def test_a_leap_day_is_a_date() -> None:
    profile = facts(traits={"d": "2024-02-29"})
    assert holds(trait("d", "before", WEEK), profile) is True


def test_within_at_its_boundaries() -> None:
    node = trait("seen", "within", WEEK)
    profile = facts(traits={"seen": "2024-06-08T12:00:00Z"})
    assert holds(node, profile, NOW) is True
    assert holds(node, profile, NOW + TICK) is False
    at_now = facts(traits={"seen": "2024-06-15T12:00:00Z"})
    assert holds(node, at_now, NOW) is True
    assert holds(node, at_now, NOW - TICK) is False


def test_before_at_its_boundary() -> None:
    node = trait("seen", "before", WEEK)
    profile = facts(traits={"seen": "2024-06-08T12:00:00Z"})
    assert holds(node, profile, NOW) is False
    assert holds(node, profile, NOW + TICK) is True


def test_hours_windows() -> None:
    node = trait("seen", "within", timedelta(hours=36))
    profile = facts(traits={"seen": "2024-06-14T00:00:00Z"})
    assert holds(node, profile, NOW) is True
    assert holds(node, profile, NOW + timedelta(hours=1)) is False


# --- computed traits ------------------------------------------------------------


def test_numbers_default_and_averages_go_missing() -> None:
    empty = facts()
    assert holds(computed("orderCount", "eq", 0), empty) is True
    assert holds(computed("orderCount", "exists"), empty) is True
    assert holds(computed("totalRevenue", "lt", 1), empty) is True
    assert holds(computed("averageOrderValue", "exists"), empty) is False
    assert holds(computed("averageOrderValue", "gte", 0), empty) is False
    assert holds(Not(computed("averageOrderValue", "gte", 0)), empty) is True
    stored_null = facts(computed={"average_order_value": None, "order_count": None})
    assert holds(computed("averageOrderValue", "not_exists"), stored_null) is True
    assert holds(computed("orderCount", "not_exists"), stored_null) is True


def test_number_fields() -> None:
    profile = facts(computed={"order_count": 3, "total_revenue": 120.5})
    assert holds(computed("orderCount", "gte", 3), profile) is True
    assert holds(computed("orderCount", "gt", 3), profile) is False
    assert holds(computed("orderCount", "in", (1, 3)), profile) is True
    assert holds(computed("totalRevenue", "between", (100, 120.5)), profile) is True
    assert holds(computed("totalRevenue", "between", (100, 120)), profile) is False


def test_instant_fields_compare_as_datetimes() -> None:
    profile = facts(computed={"last_order_at": "2024-06-01T10:00:00+02:00"})  # 08:00Z
    at = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
    assert holds(computed("lastOrderAt", "gte", at), profile) is True
    assert holds(computed("lastOrderAt", "gt", at), profile) is False
    assert holds(computed("lastOrderAt", "lt", at + TICK), profile) is True
    assert holds(computed("lastOrderAt", "lte", at - TICK), profile) is False
    assert holds(computed("lastOrderAt", "between", (at, at + DAY)), profile) is True
    assert holds(computed("lastOrderAt", "between", (at + TICK, at + DAY)), profile) is False
    assert holds(computed("lastOrderAt", "within", timedelta(days=15)), profile) is True
    assert holds(computed("lastOrderAt", "within", timedelta(days=14)), profile) is False
    assert holds(computed("lastOrderAt", "before", WEEK), profile) is True
    assert holds(computed("lastOrderAt", "gt", "2024-01-01"), profile) is False  # not a datetime


def test_an_instant_without_zone_is_utc_on_both_sides() -> None:
    profile = facts(computed={"first_seen": "2024-06-01T08:00:00"})
    naive = datetime(2024, 6, 1, 8, tzinfo=UTC).replace(tzinfo=None)
    assert holds(computed("firstSeen", "gte", naive), profile) is True
    assert holds(computed("firstSeen", "gt", naive), profile) is False
    naive_now = NOW.replace(tzinfo=None)
    assert holds(computed("firstSeen", "within", timedelta(days=15)), profile, naive_now) is True
    assert holds(computed("firstSeen", "within", timedelta(days=14)), profile, naive_now) is False


def test_missing_instant_fields() -> None:
    empty = facts()
    at = datetime(2024, 1, 1, tzinfo=UTC)
    for op, value in (("gt", at), ("lt", at), ("between", (at, NOW)), ("within", WEEK)):
        assert holds(computed("lastSeen", op, value), empty) is False
    assert holds(computed("lastSeen", "before", WEEK), empty) is False
    assert holds(computed("lastSeen", "not_exists"), empty) is True


# --- events -------------------------------------------------------------------


def order(
    days_ago: float, total: Any, sku: str = "A", name: str | None = "Order Completed"
) -> EventFact:
    return EventFact(
        name=name,
        timestamp=NOW - timedelta(days=days_ago),
        properties={"total": total, "items": [{"sku": sku}], "currency": "EUR"},
    )


AT_LEAST_ONCE = Comparison("gte", 1)


def orders(
    where: tuple[PropertyFilter, ...] = (),
    count: Comparison = AT_LEAST_ONCE,
    window: timedelta | None = None,
) -> EventCondition:
    return EventCondition("Order Completed", where=where, count=count, window=window)


def prop(path: str, op: str, value: Any = None) -> PropertyFilter:
    return PropertyFilter(tuple(path.split(".")), Comparison(op, value))


HISTORY = (
    order(1, 50, "A"),
    order(10, 30, "B"),
    order(40, 80, "A"),
    order(2, 999, name="Order Refunded"),
    order(3, 999, name=None),
)


@pytest.mark.parametrize(
    ("node", "expected_count"),
    [
        (orders(), 3),
        (orders(window=timedelta(days=30)), 2),
        (orders(window=DAY), 1),
        (orders(where=(prop("total", "gte", 50),)), 2),
        (orders(where=(prop("total", "gte", 50),), window=timedelta(days=30)), 1),
        (orders(where=(prop("items.0.sku", "eq", "A"), prop("total", "lt", 60))), 1),
        (orders(where=(prop("items.-1.sku", "eq", "B"),)), 1),
        (orders(where=(prop("coupon", "exists"),)), 0),
        (orders(where=(prop("coupon", "neq", "X"),)), 0),  # missing fails neq
        (orders(where=(prop("coupon", "not_exists"),)), 3),
        (orders(where=(prop("total", "eq", "50"),)), 0),
    ],
)
def test_event_counts(node: EventCondition, expected_count: int) -> None:
    profile = facts(events=HISTORY)
    _, tree = explain(node, profile, NOW)
    assert tree["actual"] == expected_count
    for n, verdict in ((expected_count, True), (expected_count + 1, False)):
        counted = EventCondition(node.name, node.where, Comparison("eq", n), node.window)
        assert holds(counted, profile) is verdict


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 2, True),
        ("neq", 2, False),
        ("gt", 1, True),
        ("gt", 2, False),
        ("gte", 2, True),
        ("lt", 3, True),
        ("lt", 2, False),
        ("lte", 2, True),
        ("lte", 1, False),
    ],
)
def test_count_operators(op: str, value: int, expected: bool) -> None:
    node = orders(count=Comparison(op, value), window=timedelta(days=30))
    assert holds(node, facts(events=HISTORY)) is expected


def test_did_not() -> None:
    did_not = orders(where=(prop("total", "gt", 100),), count=Comparison("eq", 0))
    assert holds(did_not, facts(events=HISTORY)) is True
    assert holds(did_not, facts()) is True
    assert holds(did_not, facts(events=(*HISTORY, order(400, 101)))) is False


def test_the_event_window_at_its_boundary() -> None:
    node = orders(window=timedelta(days=30))
    profile = facts(events=(order(30, 10),))
    assert holds(node, profile, NOW) is True
    assert holds(node, profile, NOW + TICK) is False


def test_future_events_count_in_a_window() -> None:
    node = orders(window=DAY)
    assert holds(node, facts(events=(order(-5, 10),))) is True


def test_filters_use_within_on_event_properties() -> None:
    stamped = EventFact("Trial Started", NOW - DAY, {"ends": "2024-06-14T00:00:00Z"})
    node = EventCondition("Trial Started", where=(prop("ends", "within", timedelta(days=2)),))
    assert holds(node, facts(events=(stamped,))) is True
    assert holds(node, facts(events=(stamped,)), NOW + timedelta(days=3)) is False


# --- segment, contactable, identifier -------------------------------------------


def test_segment_membership() -> None:
    assert holds(SegmentCondition(VIP), facts(segments=(VIP,))) is True
    assert holds(SegmentCondition(VIP), facts(segments=(CHURNED,))) is False


def test_contactable_asks_the_gate_for_its_channel_and_purpose() -> None:
    asked: list[tuple[str, str]] = []

    def gate(channel: str, purpose: str) -> Contactability:
        asked.append((channel, purpose))
        return Contactability(allowed=purpose == "newsletter", reason="consent granted")

    profile = facts(contact=gate)
    assert holds(ContactableCondition("email", "newsletter"), profile) is True
    assert holds(ContactableCondition("sms", "promotions"), profile) is False
    assert ("email", "newsletter") in asked
    assert ("sms", "promotions") in asked


def test_identifier_kinds() -> None:
    assert holds(IdentifierCondition("email"), facts(kinds=("email", "user_id"))) is True
    assert holds(IdentifierCondition("phone"), facts(kinds=("email",))) is False


# --- explain ------------------------------------------------------------------


def allow(channel: str, purpose: str) -> Contactability:
    return Contactability(allowed=True, reason="consent granted (marketing, source: web)")


DEFINITION = All(
    (
        trait("plan", "eq", "gold"),
        AnyOf(
            (
                orders(
                    where=(prop("total", "gte", 40),),
                    count=Comparison("gte", 2),
                    window=timedelta(days=30),
                ),
                computed("totalRevenue", "gt", 1000),
            )
        ),
        Not(SegmentCondition(CHURNED)),
        ContactableCondition("email", "marketing"),
        IdentifierCondition("email"),
    )
)


def ref(segment_id: UUID) -> str:
    return f"Segment:{segment_id.hex[:4]}"


def expected_tree(
    *,
    plan: Any,
    order_count: int,
    revenue: Any,
    churned: bool,
    contact: dict[str, Any],
    email: bool,
) -> dict[str, Any]:
    """The definition's JSON with what a profile shows; verdicts are filled in by the test."""
    return {
        "all": [
            {"trait": "plan", "op": "eq", "value": "gold", "actual": plan},
            {
                "any": [
                    {
                        "event": "Order Completed",
                        "where": [{"property": "total", "op": "gte", "value": 40}],
                        "count": {"op": "gte", "value": 2},
                        "within": {"days": 30},
                        "actual": order_count,
                    },
                    {"computed": "totalRevenue", "op": "gt", "value": 1000, "actual": revenue},
                ],
            },
            {"not": {"segment": "Segment:2222", "actual": churned}, "decidedBy": 0},
            {"contactable": {"channel": "email", "purpose": "marketing"}, "actual": contact},
            {"identifier": "email", "actual": email},
        ],
    }


def without_verdicts(tree: Any) -> Any:
    """The tree with "matched" and the groups' "decidedBy" taken out, to compare the rest."""
    if isinstance(tree, list):
        return [without_verdicts(t) for t in tree]
    if not isinstance(tree, dict):
        return tree
    dropped = {"matched"} | ({"decidedBy"} if "all" in tree or "any" in tree else set())
    return {k: without_verdicts(v) for k, v in tree.items() if k not in dropped}


def test_explain_a_member() -> None:
    profile = facts(
        traits={"plan": "gold"},
        computed={"total_revenue": 125.0},
        kinds=("email",),
        events=(order(1, 50), order(20, 45), order(25, 10), order(45, 99)),
        segments=(VIP,),
        contact=allow,
    )
    member, tree = explain(DEFINITION, profile, NOW, ref)
    assert member is True
    assert evaluate(DEFINITION, profile, NOW) is True
    gate = {"allowed": True, "reason": "consent granted (marketing, source: web)"}
    assert without_verdicts(tree) == expected_tree(
        plan="gold", order_count=2, revenue=125.0, churned=False, contact=gate, email=True
    )
    assert (tree["matched"], tree["decidedBy"]) == (True, None)
    plan, any_of, not_churned, contactable, identifier = tree["all"]
    assert plan["matched"] is True
    assert (any_of["matched"], any_of["decidedBy"]) == (True, 0)
    assert [c["matched"] for c in any_of["any"]] == [True, False]
    assert (not_churned["matched"], not_churned["not"]["matched"]) == (True, False)
    assert contactable["matched"] is True
    assert identifier["matched"] is True


def test_explain_a_non_member_evaluates_every_child() -> None:
    profile = facts(
        traits={"plan": "silver"},
        computed={"total_revenue": 1500},
        events=(order(1, 50), order(35, 60)),
        segments=(CHURNED,),
    )
    member, tree = explain(DEFINITION, profile, NOW, ref)
    assert member is False
    assert evaluate(DEFINITION, profile, NOW) is False
    gate = {"allowed": False, "reason": "no consent recorded"}
    assert without_verdicts(tree) == expected_tree(
        plan="silver", order_count=1, revenue=1500, churned=True, contact=gate, email=False
    )
    assert (tree["matched"], tree["decidedBy"]) == (False, 0)
    plan, any_of, not_churned, contactable, identifier = tree["all"]
    assert plan["matched"] is False
    # The `any` holds by its second child: the first one that settled it.
    assert (any_of["matched"], any_of["decidedBy"]) == (True, 1)
    assert [c["matched"] for c in any_of["any"]] == [False, True]
    assert (not_churned["matched"], not_churned["not"]["matched"]) == (False, True)
    assert contactable["matched"] is False
    assert identifier["matched"] is False


def test_decided_by_names_the_first_settling_child() -> None:
    yes, no = trait("a", "exists"), trait("b", "exists")
    profile = facts(traits={"a": 1})
    cases = [
        (All((yes, no, no)), False, 1),
        (All((yes, yes)), True, None),
        (All(()), True, None),
        (AnyOf((no, yes, yes)), True, 1),
        (AnyOf((no, no)), False, None),
        (AnyOf(()), False, None),
    ]
    for node, matched, decided in cases:
        _, tree = explain(node, profile, NOW)
        assert (tree["matched"], tree["decidedBy"]) == (matched, decided), node


def test_explain_shows_missing_values_as_null() -> None:
    node = All((trait("plan", "eq", "gold"), computed("averageOrderValue", "exists")))
    _, tree = explain(node, facts(), NOW)
    assert tree["all"][0] == {
        "trait": "plan",
        "op": "eq",
        "value": "gold",
        "matched": False,
        "actual": None,
    }
    assert tree["all"][1] == {
        "computed": "averageOrderValue",
        "op": "exists",
        "matched": False,
        "actual": None,
    }


def test_explain_renders_values_as_json() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    profile = facts(
        traits={"tags": ["a", "b"], "seen": "2024-06-14"},
        computed={"last_seen": "2024-06-14T10:00:00+02:00"},
    )
    node = All(
        (
            trait("tags", "contains", "a"),
            trait("plan", "in", ("gold", "silver")),
            trait("seen", "within", timedelta(hours=36)),
            trait("seen", "before", timedelta(days=2)),
            computed("lastSeen", "between", (start, NOW)),
            EventCondition("Page Viewed", window=timedelta(hours=12)),
            SegmentCondition(VIP),
        )
    )
    _, tree = explain(node, profile, NOW)
    tags, plan, within, before, last_seen, viewed, segment = tree["all"]
    assert (tags["value"], tags["actual"]) == ("a", ["a", "b"])
    assert plan["value"] == ["gold", "silver"]
    assert within["value"] == {"hours": 36}
    assert (within["actual"], within["matched"]) == ("2024-06-14", True)
    assert before["value"] == {"days": 2}
    assert last_seen["value"] == ["2024-01-01T00:00:00+00:00", "2024-06-15T12:00:00+00:00"]
    assert last_seen["actual"] == "2024-06-14T08:00:00+00:00"
    assert viewed == {
        "event": "Page Viewed",
        "count": {"op": "gte", "value": 1},
        "within": {"hours": 12},
        "matched": False,
        "actual": 0,
    }
    assert segment == {"segment": str(VIP), "matched": False, "actual": False}


# --- evaluate and explain agree ---------------------------------------------------

LEAVES: list[Node] = [
    trait("plan", "eq", "gold"),
    trait("age", "gte", 30),
    trait("tags", "contains", "vip"),
    computed("orderCount", "gt", 1),
    orders(window=timedelta(days=30)),
    SegmentCondition(VIP),
    ContactableCondition("email", "marketing"),
    IdentifierCondition("email"),
]

trees = st.recursive(
    st.sampled_from(LEAVES),
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda c: All(tuple(c))),
        st.lists(children, max_size=4).map(lambda c: AnyOf(tuple(c))),
        children.map(Not),
    ),
    max_leaves=12,
)
profiles = st.builds(
    facts,
    traits=st.fixed_dictionaries(
        {},
        optional={
            "plan": st.sampled_from(["gold", "silver", None, 1]),
            "age": st.sampled_from([29, 30, 30.5, "31", True]),
            "tags": st.sampled_from([["vip"], ["x"], "vip!", []]),
        },
    ),
    computed=st.fixed_dictionaries({}, optional={"order_count": st.integers(0, 3)}),
    kinds=st.sampled_from([(), ("email",)]),
    events=st.lists(st.floats(-2, 60).map(lambda d: order(d, 10)), max_size=3).map(tuple),
    segments=st.sampled_from([(), (VIP,)]),
    contact=st.sampled_from([allow, refuse]),
)


def consistent(tree: dict[str, Any]) -> bool:
    """Each group's "matched" and "decidedBy" follow from its children's."""
    if "all" in tree or "any" in tree:
        children = tree.get("all", tree.get("any"))
        verdicts = [c["matched"] for c in children]
        if "all" in tree:
            matched, decided = all(verdicts), None if all(verdicts) else verdicts.index(False)
        else:
            matched, decided = any(verdicts), verdicts.index(True) if any(verdicts) else None
        return (tree["matched"], tree["decidedBy"]) == (matched, decided) and all(
            consistent(c) for c in children
        )
    if "not" in tree:
        return tree["matched"] is not tree["not"]["matched"] and consistent(tree["not"])
    return isinstance(tree["matched"], bool) and "actual" in tree


@given(trees, profiles)
def test_evaluate_and_explain_agree(node: Node, profile: ProfileFacts) -> None:
    verdict, tree = explain(node, profile, NOW)
    assert verdict is evaluate(node, profile, NOW)
    assert tree["matched"] is verdict
    assert consistent(tree)
