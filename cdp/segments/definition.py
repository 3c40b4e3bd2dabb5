"""A segment definition's JSON: read into model.py's typed nodes, written back, and described.

`parse` checks a definition and reports every problem it finds with its JSON
path (`definition.all[1].op`); `to_json` writes the canonical form that is
stored and shown back; `SCHEMA` describes the same grammar as a JSON Schema
from which a UI can build a rule editor.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID

from cdp.segments.model import (
    BEFORE,
    BETWEEN,
    COMPUTED_FIELDS,
    CONTAINS,
    COUNT_OPS,
    EQ,
    EXISTS,
    GTE,
    IN,
    INSTANT_OPS,
    INSTANT_PATTERN,
    LT,
    MAX_CHILDREN,
    MAX_DEPTH,
    MAX_IN_VALUES,
    MAX_WINDOW_DAYS,
    NEQ,
    NOT_EXISTS,
    NOT_IN,
    NUMBER_OPS,
    ORDERING,
    STARTS_WITH,
    VALUE_OPS,
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
    PropertyFilter,
    SegmentCondition,
    TraitCondition,
    finite,
    is_number,
    is_scalar,
    parse_instant,
)
from consent.model import check_name
from domain.errors import FieldError, ValidationError

ROOT: Final = "definition"
KINDS: Final = (
    "all", "any", "not", "trait", "computed", "event", "segment", "contactable", "identifier",
)  # fmt: skip
_NODE_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "all": ("all",),
    "any": ("any",),
    "not": ("not",),
    "trait": ("trait", "op", "value"),
    "computed": ("computed", "op", "value"),
    "event": ("event", "where", "count", "within"),
    "segment": ("segment",),
    "contactable": ("contactable",),
    "identifier": ("identifier",),
}
_FILTER_KEYS: Final = ("property", "op", "value")
_COUNT_KEYS: Final = ("op", "value")
_CONTACT_KEYS: Final = ("channel", "purpose")
_UNITS: Final = ("days", "hours")
_UNIT_LIMITS: Final = {"days": MAX_WINDOW_DAYS, "hours": MAX_WINDOW_DAYS * 24}
_DAY: Final = timedelta(days=1)
_HOUR: Final = timedelta(hours=1)

MAX_PATH_LENGTH: Final = 255
MAX_EVENT_NAME_LENGTH: Final = 200
MAX_IDENTIFIER_KIND_LENGTH: Final = 64
# `to_json` writes an instant in UTC and `parse_instant` reads only these
# years, so an instant that a zone offset moves outside them cannot round-trip.
_INSTANT_YEARS: Final = range(1000, 3000)

_NUL_MESSAGE: Final = "text must not contain the NUL character (\\u0000)"


class DefinitionError(ValidationError):
    """Every problem found in a definition; `message` and `field` are the first one's."""

    def __init__(self, errors: list[FieldError]) -> None:
        if not errors:
            raise ValueError("a DefinitionError needs at least one error")
        super().__init__(errors[0].message, field=errors[0].field)
        self.errors = errors


def parse(
    definition: object, *, segment_id: Callable[[str], UUID | None], root: str = ROOT
) -> Node:
    """The typed tree of a definition, or DefinitionError listing all its problems.

    `root` is the path of the definition itself, so that a condition inside a
    larger document (a journey's `branch.if`) reports paths within it.
    """
    reader = _Reader(segment_id)
    node = reader.node(definition, root, 1)
    if reader.problems or node is None:
        raise DefinitionError(reader.problems)
    return node


# --- values ------------------------------------------------------------------

_INVALID: Final = object()
_PAIR: Final = 2
_SHOWN: Final = 60  # characters of a value quoted in a message


@dataclass(frozen=True)
class _Type:
    """What one value must be: `read` returns it (converted) or _INVALID."""

    description: str
    plural: str
    read: Callable[[Any], Any]


def _read_scalar(value: Any) -> Any:
    return value if is_scalar(value) and finite(value) else _INVALID


def _read_number(value: Any) -> Any:
    return value if is_number(value) and finite(value) else _INVALID


def _read_string(value: Any) -> Any:
    return value if isinstance(value, str) else _INVALID


def _read_orderable(value: Any) -> Any:
    return value if isinstance(value, str) else _read_number(value)


def _read_prefix(value: Any) -> Any:
    return value if isinstance(value, str) and value else _INVALID


def _read_instant(value: Any) -> Any:
    moment = parse_instant(value) if isinstance(value, str) else None
    return moment if moment is not None and moment.year in _INSTANT_YEARS else _INVALID


_SCALAR: Final = _Type(
    "a string, a number or true/false", "strings, numbers or true/false", _read_scalar
)
_NUMBER: Final = _Type("a number", "numbers", _read_number)
_STRING: Final = _Type("a string", "strings", _read_string)
_ORDERABLE: Final = _Type("a number or a string", "numbers or strings", _read_orderable)
_PREFIX: Final = _Type("a non-empty string", "non-empty strings", _read_prefix)
_INSTANT: Final = _Type(
    'an ISO-8601 date or time such as "2024-01-31" or "2024-01-31T09:00:00Z"',
    'ISO-8601 dates or times such as "2024-01-31"',
    _read_instant,
)


@dataclass(frozen=True)
class _Rules:
    """What each operator's value must be for one kind of subject."""

    single: dict[str, _Type]  # the operators that take one value
    listed: _Type  # each value of in and not_in
    bounds: tuple[_Type, ...]  # between: both bounds of one of these


_ANY_VALUE: Final = _Rules(
    single={
        EQ: _SCALAR, NEQ: _SCALAR, CONTAINS: _SCALAR, STARTS_WITH: _PREFIX,
        **dict.fromkeys(ORDERING, _ORDERABLE),
    },
    listed=_SCALAR,
    bounds=(_NUMBER, _STRING),
)  # fmt: skip
_COMPUTED_RULES: Final = {
    "number": _Rules(
        single={EQ: _NUMBER, NEQ: _NUMBER, **dict.fromkeys(ORDERING, _NUMBER)},
        listed=_NUMBER,
        bounds=(_NUMBER,),
    ),
    "instant": _Rules(
        single=dict.fromkeys(ORDERING, _INSTANT), listed=_INSTANT, bounds=(_INSTANT,)
    ),
}
_COMPUTED_OPS: Final = {"number": NUMBER_OPS, "instant": INSTANT_OPS}
_COMPUTED_KINDS: Final = {"number": "a number", "instant": "a date and time"}


def _has_nul(value: Any) -> bool:
    return isinstance(value, str) and "\x00" in value


def _show(value: Any) -> str:
    """A value as a marketer would type it, shortened."""
    if isinstance(value, str):
        short = value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
        return json.dumps(short, ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if is_number(value):
        return repr(value)
    return "a list" if isinstance(value, list) else "an object"


def _listing(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names)


def _quoted(names: list[str]) -> str:
    shown = [_show(n) for n in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


# --- the reader ----------------------------------------------------------------


@dataclass
class _Reader:
    segment_id: Callable[[str], UUID | None]
    problems: list[FieldError] = field(default_factory=list)

    def refuse(self, path: str, message: str) -> None:
        self.problems.append(FieldError(index=None, field=path, message=message, code="INVALID"))

    # nodes

    def node(self, raw: Any, path: str, depth: int) -> Node | None:
        if depth > MAX_DEPTH:
            self.refuse(path, f"conditions may be nested at most {MAX_DEPTH} levels deep")
            return None
        kind = self.kind(raw, path)
        if kind is None:
            return None
        allowed = _NODE_KEYS[kind]
        for key in raw:
            if key not in allowed:
                self.refuse(
                    f"{path}.{key}",
                    f'unknown key {_show(key)}; a "{kind}" node has the keys {_listing(allowed)}',
                )
        if kind in ("all", "any"):
            return self.group(raw[kind], f"{path}.{kind}", depth, kind)
        if kind == "not":
            child = self.node(raw["not"], f"{path}.not", depth + 1)
            return None if child is None else Not(child)
        return self.leaf(kind, raw, path)

    def kind(self, raw: Any, path: str) -> str | None:
        if not isinstance(raw, dict):
            self.refuse(
                path,
                'a condition must be a JSON object such as {"trait": "plan", "op": "eq", '
                f'"value": "pro"}}; found {_show(raw)}',
            )
            return None
        kinds = [k for k in KINDS if k in raw]
        if len(kinds) == 1:
            return kinds[0]
        found = _quoted(kinds) if kinds else "none"
        if not kinds and raw:
            found += f" (the keys are {_quoted(list(raw))})"
        self.refuse(path, f"a node has exactly one of the keys {_listing(KINDS)}; found {found}")
        return None

    def group(self, raw: Any, path: str, depth: int, kind: str) -> Node | None:
        if not isinstance(raw, list) or not raw:
            self.refuse(path, f'"{kind}" must be a non-empty list of conditions')
            return None
        if len(raw) > MAX_CHILDREN:
            self.refuse(
                path,
                f'"{kind}" may hold at most {MAX_CHILDREN} conditions; found {len(raw)}: '
                "group some of them",
            )
        children = [self.node(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(raw)]
        if len(raw) > MAX_CHILDREN or None in children:
            return None
        nodes = tuple(c for c in children if c is not None)
        return All(nodes) if kind == "all" else AnyOf(nodes)

    def leaf(self, kind: str, raw: dict[str, Any], path: str) -> Node | None:
        if kind == "trait":
            return self.trait(raw, path)
        if kind == "computed":
            return self.computed(raw, path)
        if kind == "event":
            return self.event(raw, path)
        value, here = raw[kind], f"{path}.{kind}"
        if kind == "segment":
            return self.segment(value, here)
        if kind == "contactable":
            return self.contactable(value, here)
        return self.identifier(value, here)

    def trait(self, raw: dict[str, Any], path: str) -> Node | None:
        name = self.dotted(raw["trait"], f"{path}.trait", "trait")
        comparison = self.comparison(raw, path, VALUE_OPS, _ANY_VALUE, "")
        if name is None or comparison is None:
            return None
        return TraitCondition(name, comparison)

    def computed(self, raw: dict[str, Any], path: str) -> Node | None:
        name = raw["computed"]
        computed = COMPUTED_FIELDS.get(name) if isinstance(name, str) else None
        if computed is None:
            self.refuse(
                f"{path}.computed",
                f"unknown computed trait {_show(name)}; use one of: "
                f"{_listing(list(COMPUTED_FIELDS))}",
            )
            self.op(raw, path, VALUE_OPS, "")
            return None
        comparison = self.computed_comparison(raw, path, computed)
        return None if comparison is None else ComputedCondition(computed, comparison)

    def computed_comparison(
        self, raw: dict[str, Any], path: str, computed: ComputedField
    ) -> Comparison | None:
        context = f' on a computed trait "{computed.name}"'
        label = _COMPUTED_KINDS[computed.kind]
        op = self.op(raw, path, _COMPUTED_OPS[computed.kind], f"{context} ({label})")
        if op is None:
            return None
        value = self.value(op, raw, path, _COMPUTED_RULES[computed.kind], context)
        return None if value is _INVALID else Comparison(op, value)

    def event(self, raw: dict[str, Any], path: str) -> Node | None:
        name = self.text(
            raw["event"], f"{path}.event", MAX_EVENT_NAME_LENGTH,
            f'"event" must be an event name of 1 to {MAX_EVENT_NAME_LENGTH} characters, '
            'such as "Order Completed"',
        )  # fmt: skip
        where = self.filters(raw["where"], f"{path}.where") if "where" in raw else ()
        count = self.count(raw["count"], f"{path}.count") if "count" in raw else Comparison(GTE, 1)
        window: Any = None
        if "within" in raw:
            window = self.window(raw["within"], f"{path}.within", '"within"')
        if name is None or where is None or count is None or window is _INVALID:
            return None
        return EventCondition(name, where, count, window)

    def segment(self, raw: Any, path: str) -> Node | None:
        found = self.segment_id(raw) if isinstance(raw, str) and not _has_nul(raw) else None
        if found is None:
            self.refuse(path, f"{_show(raw)} is not a segment id")
            return None
        return SegmentCondition(found)

    def contactable(self, raw: Any, path: str) -> Node | None:
        if not isinstance(raw, dict):
            self.refuse(
                path,
                '"contactable" must be an object such as '
                '{"channel": "email", "purpose": "newsletter"}',
            )
            return None
        self.unknown_keys(raw, path, _CONTACT_KEYS, "a contact gate")
        channel = self.contact_name(raw, path, "channel", "email")
        purpose = self.contact_name(raw, path, "purpose", "newsletter")
        if channel is None or purpose is None:
            return None
        return ContactableCondition(channel=channel, purpose=purpose)

    def contact_name(self, raw: dict[str, Any], path: str, key: str, example: str) -> str | None:
        here = f"{path}.{key}"
        if key not in raw:
            self.refuse(here, f'"{key}" is required, such as "{example}"')
            return None
        if not isinstance(raw[key], str):
            self.refuse(
                here, f'"{key}" must be a name such as "{example}"; found {_show(raw[key])}'
            )
            return None
        try:
            return check_name(raw[key], key)
        except ValidationError as error:
            self.refuse(here, error.message)
            return None

    def identifier(self, raw: Any, path: str) -> Node | None:
        kind = self.text(
            raw, path, MAX_IDENTIFIER_KIND_LENGTH,
            f'"identifier" must be an identifier kind of 1 to {MAX_IDENTIFIER_KIND_LENGTH} '
            'characters, such as "email", "user_id" or "phone"',
        )  # fmt: skip
        return None if kind is None else IdentifierCondition(kind)

    # parts of nodes

    def text(self, raw: Any, path: str, longest: int, message: str) -> str | None:
        if not isinstance(raw, str) or not 1 <= len(raw) <= longest:
            self.refuse(path, message)
            return None
        if _has_nul(raw):
            self.refuse(path, _NUL_MESSAGE)
            return None
        return raw

    def dotted(self, raw: Any, path: str, key: str) -> tuple[str, ...] | None:
        if not isinstance(raw, str) or not raw:
            self.refuse(path, f'"{key}" must be a non-empty name such as "plan" or "address.city"')
            return None
        if _has_nul(raw):
            self.refuse(path, _NUL_MESSAGE)
            return None
        if len(raw) > MAX_PATH_LENGTH:
            self.refuse(path, f'"{key}" may be at most {MAX_PATH_LENGTH} characters')
            return None
        parts = tuple(raw.split("."))
        if not all(parts):
            self.refuse(
                path,
                f'"{key}" {_show(raw)} has an empty part: separate the parts of a path '
                'with single dots, such as "address.city"',
            )
            return None
        return parts

    def unknown_keys(
        self, raw: dict[str, Any], path: str, keys: tuple[str, ...], what: str
    ) -> None:
        for key in raw:
            if key not in keys:
                self.refuse(
                    f"{path}.{key}",
                    f"unknown key {_show(key)}; {what} has the keys {_listing(keys)}",
                )

    def filters(self, raw: Any, path: str) -> tuple[PropertyFilter, ...] | None:
        if not isinstance(raw, list):
            self.refuse(path, '"where" must be a list of property filters')
            return None
        if len(raw) > MAX_CHILDREN:
            self.refuse(path, f'"where" may hold at most {MAX_CHILDREN} filters; found {len(raw)}')
        found = [self.filter(item, f"{path}[{i}]") for i, item in enumerate(raw)]
        if len(raw) > MAX_CHILDREN or None in found:
            return None
        return tuple(f for f in found if f is not None)

    def filter(self, raw: Any, path: str) -> PropertyFilter | None:
        if not isinstance(raw, dict):
            self.refuse(
                path,
                "a property filter must be an object such as "
                '{"property": "revenue", "op": "gt", "value": 50}',
            )
            return None
        self.unknown_keys(raw, path, _FILTER_KEYS, "a property filter")
        name: tuple[str, ...] | None = None
        if "property" in raw:
            name = self.dotted(raw["property"], f"{path}.property", "property")
        else:
            self.refuse(f"{path}.property", '"property" is required, such as "revenue"')
        comparison = self.comparison(raw, path, VALUE_OPS, _ANY_VALUE, "")
        if name is None or comparison is None:
            return None
        return PropertyFilter(name, comparison)

    def count(self, raw: Any, path: str) -> Comparison | None:
        if not isinstance(raw, dict):
            self.refuse(path, '"count" must be an object such as {"op": "gte", "value": 1}')
            return None
        self.unknown_keys(raw, path, _COUNT_KEYS, "a count")
        op = self.op(raw, path, COUNT_OPS, " in a count")
        value = raw.get("value")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
            self.refuse(f"{path}.value", '"value" of a count must be a whole number, 0 or more')
            return None
        if op is None:
            return None
        if op == LT and value == 0:
            self.refuse(
                path, 'a count "lt 0" can never hold; use {"op": "eq", "value": 0} for none'
            )
            return None
        return Comparison(op, value)

    # comparisons

    def op(
        self, raw: dict[str, Any], path: str, allowed: tuple[str, ...], where: str
    ) -> str | None:
        here, choices = f"{path}.op", _listing(allowed)
        if "op" not in raw:
            self.refuse(here, f'"op" is required; use one of: {choices}')
            return None
        op = raw["op"]
        if op not in allowed:
            known = isinstance(op, str) and op in VALUE_OPS
            problem = f'"{op}" does not apply{where}' if known else f"unknown operator {_show(op)}"
            self.refuse(here, f"{problem}; use one of: {choices}")
            return None
        return str(op)

    def comparison(
        self, raw: dict[str, Any], path: str, allowed: tuple[str, ...], rules: _Rules, context: str
    ) -> Comparison | None:
        op = self.op(raw, path, allowed, context)
        if op is None:
            return None
        value = self.value(op, raw, path, rules, context)
        return None if value is _INVALID else Comparison(op, value)

    def value(self, op: str, raw: dict[str, Any], path: str, rules: _Rules, context: str) -> Any:
        """The comparison's value for `op`, or _INVALID."""
        here = f"{path}.value"
        if op in (EXISTS, NOT_EXISTS):
            if "value" in raw:
                self.refuse(here, f'"{op}" takes no "value"; remove it')
                return _INVALID
            return None
        if "value" not in raw:
            self.refuse(here, f'"value" is required for "{op}"{context}')
            return _INVALID
        return self.given_value(op, raw["value"], here, rules, context)

    def given_value(self, op: str, value: Any, path: str, rules: _Rules, context: str) -> Any:
        if op in (WITHIN, BEFORE):
            return self.window(value, path, '"value"')
        if op in (IN, NOT_IN):
            return self.listed(value, path, op, rules.listed, context)
        if op == BETWEEN:
            return self.bounds(value, path, rules.bounds, context)
        kind = rules.single[op]
        return self.one(
            value, path, kind, f'"value" must be {kind.description} for "{op}"{context}'
        )

    def one(self, value: Any, path: str, kind: _Type, message: str) -> Any:
        if _has_nul(value):
            self.refuse(path, _NUL_MESSAGE)
            return _INVALID
        found = kind.read(value)
        if found is _INVALID:
            self.refuse(path, message)
        return found

    def listed(self, value: Any, path: str, op: str, kind: _Type, context: str) -> Any:
        if not isinstance(value, list) or not value:
            self.refuse(
                path, f'"value" must be a non-empty list of {kind.plural} for "{op}"{context}'
            )
            return _INVALID
        if len(value) > MAX_IN_VALUES:
            self.refuse(path, f'"value" may list at most {MAX_IN_VALUES} values for "{op}"')
            return _INVALID
        message = f'each value for "{op}" must be {kind.description}{context}'
        found = [self.one(v, f"{path}[{i}]", kind, message) for i, v in enumerate(value)]
        return _INVALID if any(f is _INVALID for f in found) else tuple(found)

    def bounds(self, value: Any, path: str, kinds: tuple[_Type, ...], context: str) -> Any:
        shape = " or two ".join(k.plural for k in kinds)
        message = f'"value" must be a list of two {shape}, the lower first, for "between"{context}'
        if not isinstance(value, list) or len(value) != _PAIR:
            self.refuse(path, message)
            return _INVALID
        for i, bound in enumerate(value):
            if _has_nul(bound):
                self.refuse(f"{path}[{i}]", _NUL_MESSAGE)
                return _INVALID
        for kind in kinds:
            low, high = kind.read(value[0]), kind.read(value[1])
            if low is not _INVALID and high is not _INVALID:
                break
        else:
            self.refuse(path, message)
            return _INVALID
        if low > high:
            self.refuse(
                path,
                f'"between" takes the lower bound first; {_show(value[0])} is above '
                f"{_show(value[1])}",
            )
            return _INVALID
        return (low, high)

    def window(self, raw: Any, path: str, label: str) -> Any:
        """A timedelta, or _INVALID."""
        if not isinstance(raw, dict):
            self.refuse(path, f'{label} must be {{"days": N}} or {{"hours": N}}')
            return _INVALID
        self.unknown_keys(raw, path, _UNITS, "a window")
        units = [u for u in _UNITS if u in raw]
        if len(units) != 1:
            self.refuse(path, 'a window has exactly one of the keys "days" or "hours"')
            return _INVALID
        unit = units[0]
        amount = raw[unit]
        problem = _amount_problem(unit, amount)
        if problem is not None:
            self.refuse(f"{path}.{unit}", problem)
            return _INVALID
        if len(raw) != 1:
            return _INVALID
        return timedelta(**{unit: amount})


def _amount_problem(unit: str, amount: Any) -> str | None:
    if not isinstance(amount, int) or isinstance(amount, bool):
        return f'"{unit}" must be a whole number'
    if amount < 1:
        return "a window must be at least 1 day or 1 hour"
    if amount > _UNIT_LIMITS[unit]:
        return f"a window may be at most {MAX_WINDOW_DAYS} days ({MAX_WINDOW_DAYS * 24} hours)"
    return None


# --- writing -----------------------------------------------------------------


def to_json(node: Node, *, segment_ref: Callable[[UUID], str]) -> dict[str, Any]:
    """The canonical JSON of a parsed tree: what is stored and shown back."""
    if isinstance(node, All | AnyOf):
        key = "all" if isinstance(node, All) else "any"
        return {key: [to_json(c, segment_ref=segment_ref) for c in node.children]}
    if isinstance(node, Not):
        return {"not": to_json(node.child, segment_ref=segment_ref)}
    if isinstance(node, SegmentCondition):
        return {"segment": segment_ref(node.segment_id)}
    return _leaf_json(node)


def _leaf_json(
    node: TraitCondition
    | ComputedCondition
    | EventCondition
    | ContactableCondition
    | IdentifierCondition,
) -> dict[str, Any]:
    if isinstance(node, TraitCondition):
        return {"trait": ".".join(node.path), **_comparison_json(node.comparison)}
    if isinstance(node, ComputedCondition):
        return {"computed": node.field.name, **_comparison_json(node.comparison)}
    if isinstance(node, EventCondition):
        return _event_json(node)
    if isinstance(node, ContactableCondition):
        return {"contactable": {"channel": node.channel, "purpose": node.purpose}}
    return {"identifier": node.kind}


def _event_json(node: EventCondition) -> dict[str, Any]:
    shape: dict[str, Any] = {"event": node.name}
    if node.where:
        shape["where"] = [
            {"property": ".".join(f.path), **_comparison_json(f.comparison)} for f in node.where
        ]
    shape["count"] = {"op": node.count.op, "value": node.count.value}
    if node.window is not None:
        shape["within"] = _window_json(node.window)
    return shape


def _comparison_json(comparison: Comparison) -> dict[str, Any]:
    if comparison.op in (EXISTS, NOT_EXISTS):
        return {"op": comparison.op}
    return {"op": comparison.op, "value": _value_json(comparison.value)}


def _value_json(value: Any) -> Any:
    if isinstance(value, timedelta):
        return _window_json(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_value_json(v) for v in value]
    return value


def _window_json(window: timedelta) -> dict[str, int]:
    if window % _DAY == timedelta(0):
        return {"days": window // _DAY}
    if window % _HOUR == timedelta(0):
        return {"hours": window // _HOUR}
    raise ValueError(f"a window is whole hours; got {window}")


# --- the JSON Schema -------------------------------------------------------------

_REF: Final = "#/$defs/"
_NO_NUL: Final = "^[^\\u0000]*$"
_PAIR_LENGTH: Final = {"minItems": 2, "maxItems": 2}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _when_op(ops: tuple[str, ...] | list[str], then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"required": ["op"], "properties": {"op": {"enum": list(ops)}}}, "then": then}


def _valued(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": ["value"], "properties": {"value": schema}}


def _pair(item: str) -> dict[str, Any]:
    return {"type": "array", "prefixItems": [_ref(item), _ref(item)], **_PAIR_LENGTH}


def _listed(item: str) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "maxItems": MAX_IN_VALUES, "items": _ref(item)}


_NO_VALUE: Final = _when_op((EXISTS, NOT_EXISTS), {"not": {"required": ["value"]}})
_WINDOW_VALUE: Final = _when_op((WITHIN, BEFORE), _valued(_ref("window")))
_SORTED_ORDERING: Final = sorted(ORDERING)


def _value_rules() -> dict[str, Any]:
    """Which value each operator takes, for a trait or an event property."""
    return {
        "description": "The value each operator takes (the exists operators take none).",
        "allOf": [
            _when_op((EQ, NEQ, CONTAINS), _valued(_ref("scalar"))),
            _when_op(_SORTED_ORDERING, _valued({"anyOf": [_ref("number"), _ref("string")]})),
            _when_op((STARTS_WITH,), _valued({**_ref("string"), "minLength": 1})),
            _when_op((IN, NOT_IN), _valued(_listed("scalar"))),
            _when_op((BETWEEN,), _valued({"anyOf": [_pair("number"), _pair("string")]})),
            _WINDOW_VALUE,
            _NO_VALUE,
        ],
    }


def _computed_rules(kind: str) -> dict[str, Any]:
    names = [f.name for f in COMPUTED_FIELDS.values() if f.kind == kind]
    if kind == "number":
        rules = [
            _when_op((EQ, NEQ, *_SORTED_ORDERING), _valued(_ref("number"))),
            _when_op((IN, NOT_IN), _valued(_listed("number"))),
            _when_op((BETWEEN,), _valued(_pair("number"))),
        ]
    else:
        rules = [
            _when_op(_SORTED_ORDERING, _valued(_ref("instant"))),
            _when_op((BETWEEN,), _valued(_pair("instant"))),
            _WINDOW_VALUE,
        ]
    return {
        "if": {"required": ["computed"], "properties": {"computed": {"enum": names}}},
        "then": {
            "properties": {"op": {"enum": list(_COMPUTED_OPS[kind])}},
            "allOf": [*rules, _NO_VALUE],
        },
    }


def object_schema(
    title: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    """A JSON Schema object with exactly these properties."""
    return {
        "title": title,
        "description": description,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _op(ops: tuple[str, ...] | list[str], description: str) -> dict[str, Any]:
    return {"title": "Operator", "description": description, "enum": list(ops)}


_OPS_DESCRIPTION: Final = (
    "eq/neq: equals/differs from (a number never equals a string); gt, gte, lt, lte: "
    "greater/less than (numbers, or strings by code point); in/not_in: one of/none of a "
    "list; contains: a string contains the text, or a list holds the value; starts_with: "
    "a string starts with the text; between: within two bounds, both included; exists/"
    "not_exists: has a value or not (these take no value); within/before: a date within "
    "the last N days or hours, or more than N ago."
)


def _node_kinds() -> dict[str, Any]:
    children = {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_CHILDREN,
        "items": _ref("node"),
    }
    return {
        "all": object_schema(
            "All of", "Every condition in the list holds.", {"all": children}, ["all"]
        ),
        "any": object_schema(
            "Any of", "At least one condition in the list holds.", {"any": children}, ["any"]
        ),
        "not": object_schema("Not", "The condition does not hold.", {"not": _ref("node")}, ["not"]),
        "trait": {
            **object_schema(
                "Trait",
                "Compares a profile trait. A dotted path reads into nested JSON: "
                '"address.city", "items.0.sku". A missing trait never matches, except '
                'with "not_exists".',
                {
                    "trait": {**_ref("path"), "title": "Trait"},
                    "op": _op(VALUE_OPS, _OPS_DESCRIPTION),
                    "value": {"title": "Value"},
                },
                ["trait", "op"],
            ),
            "allOf": [_ref("valueRules")],
        },
        "computed": {
            **object_schema(
                "Computed trait",
                "Compares a trait the platform computes from the profile's events: numbers "
                "(order count, revenue) or moments (first seen, last order).",
                {
                    "computed": {
                        "title": "Computed trait",
                        "enum": list(COMPUTED_FIELDS),
                    },
                    "op": _op(
                        tuple(dict.fromkeys((*NUMBER_OPS, *INSTANT_OPS))),
                        "Numbers take "
                        + _listing(NUMBER_OPS)
                        + "; moments take "
                        + _listing(INSTANT_OPS)
                        + ".",
                    ),
                    "value": {"title": "Value"},
                },
                ["computed", "op"],
            ),
            "allOf": [_computed_rules("number"), _computed_rules("instant")],
        },
        "event": object_schema(
            "Event",
            "Counts the profile's events of a name that match every property filter, "
            "within a window back from now. Without a count, at least one; without a "
            "window, all time.",
            {
                "event": {
                    **_ref("string"),
                    "title": "Event name",
                    "minLength": 1,
                    "maxLength": MAX_EVENT_NAME_LENGTH,
                },
                "where": {
                    "title": "Property filters",
                    "description": "Every filter must hold for an event to count.",
                    "type": "array",
                    "maxItems": MAX_CHILDREN,
                    "items": _ref("propertyFilter"),
                    "default": [],
                },
                "count": _ref("count"),
                "within": {**_ref("window"), "title": "Within the last"},
            },
            ["event"],
        ),
        "segment": object_schema(
            "In segment",
            "The profile is a member of another segment.",
            {"segment": {**_ref("string"), "title": "Segment id"}},
            ["segment"],
        ),
        "contactable": object_schema(
            "Contactable",
            "The contact gate allows a message on this channel for this purpose "
            "(consent recorded and no suppression).",
            {
                "contactable": object_schema(
                    "Channel and purpose",
                    "Lower-case names such as email and newsletter.",
                    {
                        "channel": {**_ref("name"), "title": "Channel"},
                        "purpose": {**_ref("name"), "title": "Purpose"},
                    },
                    ["channel", "purpose"],
                )
            },
            ["contactable"],
        ),
        "identifier": object_schema(
            "Has identifier",
            "The profile has an identifier of this kind, such as email, user_id or phone.",
            {
                "identifier": {
                    **_ref("string"),
                    "title": "Identifier kind",
                    "minLength": 1,
                    "maxLength": MAX_IDENTIFIER_KIND_LENGTH,
                }
            },
            ["identifier"],
        ),
    }


def _parts() -> dict[str, Any]:
    window_unit = {"type": "integer", "minimum": 1}
    return {
        "string": {"type": "string", "pattern": _NO_NUL},
        "number": {"type": "number"},
        "scalar": {
            "title": "Value",
            "type": ["string", "number", "boolean"],
            "pattern": _NO_NUL,
        },
        "instant": {
            "title": "Date or time",
            "description": "ISO-8601, such as 2024-01-31 or 2024-01-31T09:00:00Z; "
            "without a zone, UTC.",
            "type": "string",
            "pattern": INSTANT_PATTERN,
        },
        "path": {
            "description": 'A name, or a dotted path into nested JSON such as "address.city".',
            "type": "string",
            "maxLength": MAX_PATH_LENGTH,
            "pattern": "^[^.\\u0000]+(\\.[^.\\u0000]+)*$",
        },
        "name": {
            "description": "1-64 characters of a-z, 0-9, '_', '.' or '-' (read in lower case).",
            "type": "string",
            "pattern": "^\\s*[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\\s*$",
        },
        "window": {
            "title": "Window",
            "description": f"A number of days (up to {MAX_WINDOW_DAYS}) or of hours.",
            "oneOf": [
                object_schema(
                    "Days",
                    "The last N days.",
                    {"days": {**window_unit, "maximum": MAX_WINDOW_DAYS}},
                    ["days"],
                ),
                object_schema(
                    "Hours",
                    "The last N hours.",
                    {"hours": {**window_unit, "maximum": MAX_WINDOW_DAYS * 24}},
                    ["hours"],
                ),
            ],
        },
        "count": {
            **object_schema(
                "Count",
                "How many matching events there must be.",
                {
                    "op": _op(COUNT_OPS, "Compares the number of matching events."),
                    "value": {"type": "integer", "minimum": 0},
                },
                ["op", "value"],
            ),
            "default": {"op": GTE, "value": 1},
            "not": {"properties": {"op": {"const": LT}, "value": {"const": 0}}},
        },
        "propertyFilter": {
            **object_schema(
                "Property filter",
                "Compares a property of the event; a dotted path reads into nested JSON.",
                {
                    "property": {**_ref("path"), "title": "Property"},
                    "op": _op(VALUE_OPS, _OPS_DESCRIPTION),
                    "value": {"title": "Value"},
                },
                ["property", "op"],
            ),
            "allOf": [_ref("valueRules")],
        },
        "valueRules": _value_rules(),
    }


def _schema() -> dict[str, Any]:
    kinds = _node_kinds()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:cdp:segment-definition",
        "title": "Segment definition",
        "description": "A tree of conditions on a profile. Each node is an object with "
        "exactly one of the keys " + _listing(KINDS) + ".",
        "$ref": _REF + "node",
        "$defs": {
            "node": {
                "title": "Condition",
                "oneOf": [_ref(kind) for kind in KINDS],
            },
            **kinds,
            **_parts(),
        },
    }


# Through JSON, so that the published schema shares no objects and is plain JSON.
SCHEMA: Final[dict[str, Any]] = json.loads(json.dumps(_schema()))
