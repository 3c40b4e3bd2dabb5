"""Hypothesis strategies for valid segment definitions (the JSON, before `parse`).

Names and values come from small sets so that generated profiles and events
can both match and miss them: traits among TRAITS, events among EVENTS,
event properties among PROPERTIES, values among small ints, a few floats,
STRINGS and bools.
"""

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from cdp.segments.model import (
    BEFORE,
    BETWEEN,
    COMPUTED_FIELDS,
    CONTAINS,
    COUNT_OPS,
    EQ,
    EXISTS,
    GT,
    GTE,
    IN,
    INSTANT_OPS,
    LT,
    LTE,
    MAX_WINDOW_DAYS,
    NEQ,
    NOT_EXISTS,
    NOT_IN,
    NUMBER_OPS,
    STARTS_WITH,
    VALUE_OPS,
    WITHIN,
    ComputedField,
    parse_instant,
)

TRAITS = ("age", "plan", "address.city", "tags", "score")
EVENTS = ("Order Completed", "Page Viewed", "Email Opened")
PROPERTIES = ("revenue", "sku", "category")
STRINGS = ("pro", "free", "Berlin", "p", "")
FLOATS = (0.5, 1.5, -0.5, 2.0)
INSTANTS = (
    "2024-01-01",
    "2024-06-15T12:00:00Z",
    "2024-06-14T09:30",
    "2025-01-01T00:00:00+02:00",
    "2023-12-31 23:59:59.5",
)
CHANNELS = ("email", "sms")
PURPOSES = ("newsletter", "marketing", "transactional")
IDENTIFIER_KINDS = ("email", "user_id", "phone")


def numbers() -> st.SearchStrategy[int | float]:
    return st.one_of(st.integers(-1, 5), st.sampled_from(FLOATS))


def strings() -> st.SearchStrategy[str]:
    return st.sampled_from(STRINGS)


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(numbers(), strings(), st.booleans())


def windows() -> st.SearchStrategy[dict[str, int]]:
    days = st.sampled_from((1, 2, 7, 30, 90, MAX_WINDOW_DAYS))
    hours = st.sampled_from((1, 6, 24, 36, 48, MAX_WINDOW_DAYS * 24))
    return st.one_of(days.map(lambda n: {"days": n}), hours.map(lambda n: {"hours": n}))


def _pair(items: st.SearchStrategy[Any], key: Any = None) -> st.SearchStrategy[list[Any]]:
    return st.lists(items, min_size=2, max_size=2).map(lambda pair: sorted(pair, key=key))


def values(op: str) -> st.SearchStrategy[Any]:
    """A value `op` accepts on a trait or an event property."""
    if op in (EQ, NEQ, CONTAINS):
        return scalars()
    if op in (GT, GTE, LT, LTE):
        return st.one_of(numbers(), strings())
    if op == STARTS_WITH:
        return strings().filter(bool)
    if op in (IN, NOT_IN):
        return st.lists(scalars(), min_size=1, max_size=4)
    if op == BETWEEN:
        return st.one_of(_pair(numbers()), _pair(strings()))
    return windows()


def _with_value(op: str, value: st.SearchStrategy[Any] | None) -> st.SearchStrategy[dict[str, Any]]:
    if value is None or op in (EXISTS, NOT_EXISTS):
        return st.just({"op": op})
    return value.map(lambda v: {"op": op, "value": v})


def comparisons() -> st.SearchStrategy[dict[str, Any]]:
    """{"op": ..., "value": ...} for any operator, on a trait or a property."""
    return st.sampled_from(VALUE_OPS).flatmap(lambda op: _with_value(op, values(op)))


def traits() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda name, c: {"trait": name, **c}, st.sampled_from(TRAITS), comparisons())


def _computed_value(field: ComputedField, op: str) -> st.SearchStrategy[Any] | None:
    if op in (EXISTS, NOT_EXISTS):
        return None
    if op in (WITHIN, BEFORE):
        return windows()
    if field.kind == "number":
        if op in (IN, NOT_IN):
            return st.lists(numbers(), min_size=1, max_size=4)
        return _pair(numbers()) if op == BETWEEN else numbers()
    instants = st.sampled_from(INSTANTS)
    return _pair(instants, key=parse_instant) if op == BETWEEN else instants


def _computed_with(field: ComputedField) -> st.SearchStrategy[dict[str, Any]]:
    ops = NUMBER_OPS if field.kind == "number" else INSTANT_OPS
    return st.sampled_from(ops).flatmap(
        lambda op: _with_value(op, _computed_value(field, op)).map(
            lambda c: {"computed": field.name, **c}
        )
    )


def computed() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(list(COMPUTED_FIELDS.values())).flatmap(_computed_with)


def counts() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda op, n: {"op": op, "value": n}, st.sampled_from(COUNT_OPS), st.integers(0, 3)
    ).filter(lambda c: c != {"op": LT, "value": 0})


def events() -> st.SearchStrategy[dict[str, Any]]:
    where = st.lists(
        st.builds(lambda p, c: {"property": p, **c}, st.sampled_from(PROPERTIES), comparisons()),
        max_size=3,
    )
    return st.fixed_dictionaries(
        {"event": st.sampled_from(EVENTS)},
        optional={"where": where, "count": counts(), "within": windows()},
    )


def _leaves(segment_ids: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
    contact = st.fixed_dictionaries(
        {"channel": st.sampled_from(CHANNELS), "purpose": st.sampled_from(PURPOSES)}
    )
    kinds = [
        traits(),
        computed(),
        events(),
        contact.map(lambda c: {"contactable": c}),
        st.sampled_from(IDENTIFIER_KINDS).map(lambda k: {"identifier": k}),
    ]
    if segment_ids:
        kinds.append(st.sampled_from(list(segment_ids)).map(lambda s: {"segment": s}))
    return st.one_of(kinds)


def _groups(
    children: st.SearchStrategy[dict[str, Any]],
) -> st.SearchStrategy[dict[str, Any]]:
    listed = st.lists(children, min_size=1, max_size=4)
    return st.one_of(
        listed.map(lambda xs: {"all": xs}),
        listed.map(lambda xs: {"any": xs}),
        children.map(lambda x: {"not": x}),
    )


def definitions(
    *, segment_ids: Sequence[str] = (), max_leaves: int = 8
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid definitions: nested groups over every kind of condition and every operator.

    `{"segment": ...}` nodes are drawn from `segment_ids` (none when empty),
    which the caller's `segment_id` must map to UUIDs.
    """
    return st.recursive(_leaves(segment_ids), _groups, max_leaves=max_leaves)
