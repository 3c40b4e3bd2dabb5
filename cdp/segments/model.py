"""A segment definition as typed nodes, and the value rules both evaluators share (no I/O).

The definition grammar is in docs/segments.md. `definition.parse` turns the
JSON into these nodes; `compiler` turns them into one SQL statement and
`evaluate` into a Python verdict. The two must agree on every input, so the
rules they share are written once here:

- Two-valued logic: a comparison with a missing value (absent, or JSON null)
  is false, and `not` of it is true. Only `not_exists` holds for a missing value.
- Types do not mix: a number never equals a string, and `true` is not 1.
  Numbers compare by value (1 equals 1.0); strings compare by code point.
- A dotted path steps into objects by key and into arrays by index (`items.0`).
- `within` and `before` read ISO-8601 strings (`parse_instant`); anything
  else is missing for them.
"""

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

# Operators that compare a value found at a path with the node's `value`.
EQ, NEQ, GT, GTE, LT, LTE = "eq", "neq", "gt", "gte", "lt", "lte"
IN, NOT_IN, CONTAINS, STARTS_WITH = "in", "not_in", "contains", "starts_with"
EXISTS, NOT_EXISTS, BETWEEN, WITHIN, BEFORE = "exists", "not_exists", "between", "within", "before"

ORDERING: Final = frozenset({GT, GTE, LT, LTE})
VALUE_OPS: Final = (
    EQ, NEQ, GT, GTE, LT, LTE, IN, NOT_IN, CONTAINS, STARTS_WITH, EXISTS, NOT_EXISTS, BETWEEN,
    WITHIN, BEFORE,
)  # fmt: skip
COUNT_OPS: Final = (EQ, NEQ, GT, GTE, LT, LTE)

# Limits that keep one definition's statement a reasonable size.
MAX_CHILDREN: Final = 100
MAX_DEPTH: Final = 32
MAX_IN_VALUES: Final = 1000
MAX_WINDOW_DAYS: Final = 3650


@dataclass(frozen=True)
class Comparison:
    """`op` applied to what is found, against `value`.

    `value` is a scalar (str, int, float or bool) for eq, neq, the orderings,
    contains and starts_with; a tuple of scalars for in and not_in; a pair of
    numbers or of strings for between; a timedelta for within and before; None
    for exists and not_exists.
    """

    op: str
    value: Any = None


@dataclass(frozen=True)
class TraitCondition:
    path: tuple[str, ...]
    comparison: Comparison


@dataclass(frozen=True)
class ComputedField:
    """A computed trait by its GraphQL name, where it is stored and what it holds."""

    name: str
    key: str
    kind: str  # "number" or "instant"
    default: float | None = None


COMPUTED_FIELDS: Final = {
    f.name: f
    for f in (
        ComputedField("orderCount", "order_count", "number", 0),
        ComputedField("totalRevenue", "total_revenue", "number", 0),
        ComputedField("averageOrderValue", "average_order_value", "number"),
        ComputedField("firstSeen", "first_seen", "instant"),
        ComputedField("lastSeen", "last_seen", "instant"),
        ComputedField("lastOrderAt", "last_order_at", "instant"),
    )
}
NUMBER_OPS: Final = (EQ, NEQ, GT, GTE, LT, LTE, IN, NOT_IN, BETWEEN, EXISTS, NOT_EXISTS)
INSTANT_OPS: Final = (GT, GTE, LT, LTE, BETWEEN, WITHIN, BEFORE, EXISTS, NOT_EXISTS)


@dataclass(frozen=True)
class ComputedCondition:
    """For an instant field, the values of gt/gte/lt/lte/between are datetimes."""

    field: ComputedField
    comparison: Comparison


@dataclass(frozen=True)
class PropertyFilter:
    path: tuple[str, ...]
    comparison: Comparison


@dataclass(frozen=True)
class EventCondition:
    """How many of the profile's events named `name` match `where` within `window`.

    The window is measured on the event's own (skew-corrected) time, back from
    now; None is all time. `count` defaults to at least one.
    """

    name: str
    where: tuple[PropertyFilter, ...] = ()
    count: Comparison = Comparison(GTE, 1)
    window: timedelta | None = None


@dataclass(frozen=True)
class SegmentCondition:
    segment_id: UUID


@dataclass(frozen=True)
class ContactableCondition:
    channel: str
    purpose: str


@dataclass(frozen=True)
class IdentifierCondition:
    kind: str


@dataclass(frozen=True)
class All:
    children: tuple["Node", ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple["Node", ...]


@dataclass(frozen=True)
class Not:
    child: "Node"


Node = (
    All
    | AnyOf
    | Not
    | TraitCondition
    | ComputedCondition
    | EventCondition
    | SegmentCondition
    | ContactableCondition
    | IdentifierCondition
)


def walk(node: Node) -> list[Node]:
    """The node and all its descendants, depth first."""
    found: list[Node] = [node]
    if isinstance(node, All | AnyOf):
        for child in node.children:
            found.extend(walk(child))
    elif isinstance(node, Not):
        found.extend(walk(node.child))
    return found


def referenced_segments(node: Node) -> set[UUID]:
    return {n.segment_id for n in walk(node) if isinstance(n, SegmentCondition)}


def uses_time(node: Node) -> bool:
    """Whether the definition's answer can change with the passing of time alone."""
    for n in walk(node):
        if isinstance(n, EventCondition) and n.window is not None:
            return True
        comparisons: list[Comparison] = []
        if isinstance(n, TraitCondition | ComputedCondition):
            comparisons.append(n.comparison)
        if isinstance(n, EventCondition):
            comparisons.extend(f.comparison for f in n.where)
        if any(c.op in (WITHIN, BEFORE) for c in comparisons):
            return True
    return False


# --- values ---------------------------------------------------------------

MISSING: Final = object()


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or is_number(value)


def lookup(document: Any, path: tuple[str, ...]) -> Any:
    """The value at `path`, or MISSING; JSON null counts as missing.

    Arrays are indexed by a segment that is a whole number, negative ones
    counting from the end, as PostgreSQL's `#>` does.
    """
    current = document
    for step in path:
        if isinstance(current, dict):
            if step not in current:
                return MISSING
            current = current[step]
        elif isinstance(current, list):
            if not is_index(step):
                return MISSING
            index = int(step)
            if not (_INT_MIN <= index <= _INT_MAX and -len(current) <= index < len(current)):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return MISSING if current is None else current


# PostgreSQL reads an array index as C's strtol does: leading white space, a
# sign, digits, nothing after, within a 32-bit int.
_INDEX = re.compile(r"^[ \t\n\r\f\v]*[+-]?[0-9]+$")
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def is_index(step: str) -> bool:
    """Whether a path step reads an array element when it meets an array."""
    return _INDEX.fullmatch(step) is not None


def same(a: Any, b: Any) -> bool:
    """JSON equality: types do not mix, and numbers compare by value."""
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return False


def comparable(a: Any, b: Any) -> bool:
    """Whether the orderings apply: two numbers, or two strings."""
    return (is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str))


def ordered(op: str, actual: Any, value: Any) -> bool:
    if not comparable(actual, value):
        return False
    if op == GT:
        return bool(actual > value)
    if op == GTE:
        return bool(actual >= value)
    if op == LT:
        return bool(actual < value)
    return bool(actual <= value)


def count_matches(op: str, count: int, value: int) -> bool:
    if op == EQ:
        return count == value
    if op == NEQ:
        return count != value
    return ordered(op, count, value)


# ISO-8601 as the compiler's SQL function reads it: a date, optionally a time
# to the minute, second or microsecond, optionally a zone; no zone is UTC.
INSTANT_PATTERN: Final = (
    r"^([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"(?:[T ]([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9])(?:\.([0-9]{1,6}))?)?"
    r"(Z|([+-])([01][0-9]|2[0-3])(?::?([0-5][0-9]))?)?)?$"
)
_INSTANT = re.compile(INSTANT_PATTERN)


def parse_instant(value: Any) -> datetime | None:
    """The moment an ISO-8601 string names, or None if it is not one."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    match = _INSTANT.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, _, sign, off_h, off_m = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            int((fraction or "0").ljust(6, "0")), tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        return None
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
        moment = moment - offset if sign == "+" else moment + offset
    return moment


_INT64 = 2**63


def finite(value: Any) -> bool:
    """Whether a number can be stored and compared as given: a finite float, a 64-bit integer."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -_INT64 <= value < _INT64
    return True
