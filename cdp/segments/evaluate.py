"""A segment definition evaluated against one profile in Python: the reference semantics.

The SQL compiler is tested against `evaluate`, and `explain` shows why a
profile is in a segment or not. The shared value rules are in `model`; here:

- `all` holds when every child holds (an empty `all` holds), `any` when at
  least one does, `not` negates. Two-valued: nothing is ever "unknown".
- trait: the value at the path in the traits (`lookup`). computed: the stored
  value or the field's default, None being missing; an instant field's value
  is `parse_instant` of the stored string (missing if it is not one).
- Every operator but `exists` and `not_exists` is false on a missing value;
  `neq` and `not_in` hold for a present value of another type. The orderings
  and `between` apply to two numbers, two strings (by code point) or two
  datetimes. `contains` is a substring of a string or an element of an array;
  `starts_with` is a string prefix. `within` holds for an instant in
  [now - value, now], `before` for one earlier than now - value.
- event: the number of events with the node's name, stamped at or after
  now - window when there is a window (later than now counts too), whose
  properties pass every `where` filter, compared with `count`.
- segment: current membership; contactable: the contact gate allows the
  channel and purpose; identifier: the profile has one of that kind.

A naive datetime (in facts, `now` or a node's value) is read as UTC.
"""

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

from cdp.segments import definition
from cdp.segments.model import (
    BEFORE,
    BETWEEN,
    CONTAINS,
    EQ,
    EXISTS,
    GT,
    GTE,
    IN,
    LT,
    LTE,
    MISSING,
    NEQ,
    NOT_EXISTS,
    NOT_IN,
    STARTS_WITH,
    WITHIN,
    All,
    AnyOf,
    Comparison,
    ComputedCondition,
    ComputedField,
    ContactableCondition,
    EventCondition,
    IdentifierCondition,
    Node,
    Not,
    SegmentCondition,
    TraitCondition,
    count_matches,
    lookup,
    ordered,
    parse_instant,
    same,
)
from consent.model import Contactability


@dataclass(frozen=True)
class EventFact:
    name: str | None
    timestamp: datetime
    properties: dict[str, Any]


@dataclass(frozen=True)
class ProfileFacts:
    """Everything about one profile that a definition can read."""

    traits: dict[str, Any]
    computed: dict[str, Any]
    identifier_kinds: frozenset[str]
    events: tuple[EventFact, ...]
    segments: frozenset[UUID]
    contact: Callable[[str, str], Contactability]


Leaf = (
    TraitCondition
    | ComputedCondition
    | EventCondition
    | SegmentCondition
    | ContactableCondition
    | IdentifierCondition
)


def evaluate(node: Node, facts: ProfileFacts, now: datetime) -> bool:
    if isinstance(node, All):
        return all(evaluate(child, facts, now) for child in node.children)
    if isinstance(node, AnyOf):
        return any(evaluate(child, facts, now) for child in node.children)
    if isinstance(node, Not):
        return not evaluate(node.child, facts, now)
    return _check(node, facts, now)[0]


def explain(
    node: Node,
    facts: ProfileFacts,
    now: datetime,
    segment_ref: Callable[[UUID], str] = str,
) -> tuple[bool, dict[str, Any]]:
    """The verdict, and the definition's JSON with "matched" and "actual" on every node.

    Every child is evaluated, even once the result is settled. `all`, `any`
    and `not` carry "decidedBy": the index of the first child that settled
    the result (the first false child of a false `all`, the first true child
    of a true `any`, 0 for `not`), or None when no single child did.
    """
    if isinstance(node, All | AnyOf):
        return _explain_group(node, facts, now, segment_ref)
    if isinstance(node, Not):
        held, tree = explain(node.child, facts, now, segment_ref)
        return not held, {"not": tree, "matched": not held, "decidedBy": 0}
    matched, actual = _check(node, facts, now)
    shape = definition.to_json(node, segment_ref=segment_ref)
    return matched, {**shape, "matched": matched, "actual": _json(actual)}


def _explain_group(
    node: All | AnyOf, facts: ProfileFacts, now: datetime, segment_ref: Callable[[UUID], str]
) -> tuple[bool, dict[str, Any]]:
    results = [explain(child, facts, now, segment_ref) for child in node.children]
    verdicts = [held for held, _ in results]
    if isinstance(node, All):
        key, matched = "all", all(verdicts)
        decided = None if matched else verdicts.index(False)
    else:
        key, matched = "any", any(verdicts)
        decided = verdicts.index(True) if matched else None
    trees = [tree for _, tree in results]
    return matched, {key: trees, "matched": matched, "decidedBy": decided}


# --- leaves -----------------------------------------------------------------


def _check(node: Leaf, facts: ProfileFacts, now: datetime) -> tuple[bool, Any]:
    """Whether the leaf holds, and what was seen."""
    if isinstance(node, TraitCondition):
        actual = lookup(facts.traits, node.path)
        return compare(node.comparison, actual, now), actual
    if isinstance(node, ComputedCondition):
        actual = _computed_value(node.field, facts.computed)
        return compare(node.comparison, actual, now), actual
    if isinstance(node, EventCondition):
        count = _count_events(node, facts.events, now)
        return count_matches(node.count.op, count, node.count.value), count
    if isinstance(node, SegmentCondition):
        member = node.segment_id in facts.segments
        return member, member
    if isinstance(node, ContactableCondition):
        answer = facts.contact(node.channel, node.purpose)
        return answer.allowed, answer
    has = node.kind in facts.identifier_kinds
    return has, has


def _computed_value(field: ComputedField, computed: dict[str, Any]) -> Any:
    stored = computed.get(field.key, field.default)
    if stored is None:
        return MISSING
    if field.kind == "instant":
        moment = parse_instant(stored)
        return MISSING if moment is None else _utc(moment)
    return stored


def _count_events(node: EventCondition, events: tuple[EventFact, ...], now: datetime) -> int:
    since = None if node.window is None else _utc(now) - node.window
    return sum(
        1
        for event in events
        if event.name == node.name
        and (since is None or _utc(event.timestamp) >= since)
        and all(compare(f.comparison, lookup(event.properties, f.path), now) for f in node.where)
    )


# --- comparisons --------------------------------------------------------------


def compare(comparison: Comparison, actual: Any, now: datetime) -> bool:
    """Whether `actual` (MISSING when absent) passes the comparison at `now`."""
    op, value = comparison.op, comparison.value
    if op == EXISTS:
        return actual is not MISSING
    if op == NOT_EXISTS:
        return actual is MISSING
    check = _CHECKS.get(op)
    if check is None:
        raise ValueError(f"unknown operator {op!r}")
    return actual is not MISSING and check(actual, value, now)


_ORDERINGS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    GT: operator.gt,
    GTE: operator.ge,
    LT: operator.lt,
    LTE: operator.le,
}


def _ordered(op: str, actual: Any, value: Any) -> bool:
    if isinstance(actual, datetime) and isinstance(value, datetime):
        return _ORDERINGS[op](_utc(actual), _utc(value))
    return ordered(op, actual, value)


def _between(actual: Any, bounds: Any, now: datetime) -> bool:
    low, high = bounds
    return _ordered(GTE, actual, low) and _ordered(LTE, actual, high)


def _contains(actual: Any, value: Any, now: datetime) -> bool:
    if isinstance(actual, str):
        return isinstance(value, str) and value in actual
    if isinstance(actual, list):
        return any(same(element, value) for element in actual)
    return False


def _starts_with(actual: Any, value: Any, now: datetime) -> bool:
    return isinstance(actual, str) and isinstance(value, str) and actual.startswith(value)


def _within(actual: Any, span: timedelta, now: datetime) -> bool:
    moment = parse_instant(actual)
    return moment is not None and _utc(now) - span <= _utc(moment) <= _utc(now)


def _before(actual: Any, span: timedelta, now: datetime) -> bool:
    moment = parse_instant(actual)
    return moment is not None and _utc(moment) < _utc(now) - span


def _ordering(op: str) -> Callable[[Any, Any, datetime], bool]:
    return lambda actual, value, now: _ordered(op, actual, value)


# Each applies to a present value; `compare` handles MISSING before them.
_CHECKS: Final[dict[str, Callable[[Any, Any, datetime], bool]]] = {
    EQ: lambda actual, value, now: same(actual, value),
    NEQ: lambda actual, value, now: not same(actual, value),
    IN: lambda actual, values, now: any(same(actual, v) for v in values),
    NOT_IN: lambda actual, values, now: not any(same(actual, v) for v in values),
    **{op: _ordering(op) for op in _ORDERINGS},
    BETWEEN: _between,
    CONTAINS: _contains,
    STARTS_WITH: _starts_with,
    WITHIN: _within,
    BEFORE: _before,
}


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- JSON ---------------------------------------------------------------------


def _json(value: Any) -> Any:
    """A value of a node, or one seen on the profile, as JSON."""
    if value is MISSING:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Contactability):
        return {"allowed": value.allowed, "reason": value.reason}
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    return value
