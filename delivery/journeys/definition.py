"""A journey definition's JSON: step ids assigned, read into model.py's typed nodes, and described.

`with_step_ids` gives every step an id before a definition is saved, keeping
the ids of a prior version; `parse` checks a definition and reports every
problem it finds with its JSON path (`definition.steps[1].branch.if.all[0].op`);
`schema` describes the same grammar as a JSON Schema. A journey's event
filters and `branch.if` are read by the segments' parser, so their rules and
messages are the segments' own; `event_matches` applies a filter to one event
as a segment counts events.
"""

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Final
from uuid import UUID

from email_validator import EmailNotValidError, validate_email

from cdp.segments import definition as segments
from cdp.segments.definition import MAX_PATH_LENGTH, ROOT, DefinitionError, object_schema
from cdp.segments.evaluate import compare
from cdp.segments.model import (
    MAX_CHILDREN,
    MAX_WINDOW_DAYS,
    EventCondition,
    Node,
    finite,
    is_number,
    lookup,
)
from consent.model import check_name
from delivery.journeys.model import (
    REENTRY,
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
)
from domain.errors import FieldError, ValidationError

MAX_STEPS: Final = 200
MAX_NESTING: Final = 20
MAX_EXITS: Final = MAX_CHILDREN
MAX_SPLIT_PATHS: Final = 10
MAX_DAYS: Final = MAX_WINDOW_DAYS  # durations, inactivity and goal windows
MAX_STEP_ID_LENGTH: Final = 64
MAX_FROM_NAME: Final = 100  # as a campaign's
DEFAULT_AT: Final = time(9, 0)

_KEYS: Final = ("trigger", "steps", "exitOn", "goal", "reentry")
TRIGGERS: Final = ("event", "segmentEntered", "segmentExited", "dateTrait", "inactiveDays")
_TRIGGER_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "event": ("event", "where"),
    "segmentEntered": ("segmentEntered",),
    "segmentExited": ("segmentExited",),
    "dateTrait": ("dateTrait", "annual", "at"),
    "inactiveDays": ("inactiveDays",),
}
STEPS: Final = ("wait", "send", "branch", "split", "waitFor", "exit")
_MATCH_KEYS: Final = ("event", "where")
_GOAL_KEYS: Final = ("event", "withinDays")
_SEND_KEYS: Final = ("templateId", "purpose", "fromEmail", "fromName", "replyTo")
_BRANCH_KEYS: Final = ("if", "then", "else")
_PATH_KEYS: Final = ("weight", "steps")
_WAIT_FOR_KEYS: Final = ("event", "where", "timeout", "then", "else")
_UNIT_SECONDS: Final = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
_UNITS: Final = tuple(_UNIT_SECONDS)
_LONGEST: Final = MAX_DAYS * _UNIT_SECONDS["days"]

_STEP_ID: Final = re.compile(f"[A-Za-z0-9_-]{{1,{MAX_STEP_ID_LENGTH}}}")
_STEP_ID_PATTERN: Final = f"^[A-Za-z0-9_-]{{1,{MAX_STEP_ID_LENGTH}}}$"
_TIME: Final = re.compile("([01][0-9]|2[0-3]):([0-5][0-9])")
_TIME_PATTERN: Final = "^([01][0-9]|2[0-3]):[0-5][0-9]$"
_CONTROL: Final = re.compile("[\x00-\x1f\x7f]")
_CONTROL_PATTERN: Final = "^[^\\u0000-\\u001f\\u007f]*$"
# Generated ids: "s" and a number; longer numbers cannot be a generated id's.
_GENERATED: Final = re.compile("s([0-9]{1,18})")

_SHOWN: Final = 60  # characters of a value quoted in a message
_TIME_EXAMPLE: Final = 'as "HH:MM" on a 24-hour clock, such as "09:00"'
_DURATION_EXAMPLE: Final = '{"hours": 1} or {"days": 2, "hours": 12}'
_STEPS_SHAPE: Final = 'steps must be a list of steps such as [{"wait": {"hours": 1}}]'
_PAIR: Final = 2


def parse(
    raw: object,
    *,
    segment_id: Callable[[str], UUID | None],
    template_id: Callable[[str], UUID | None],
) -> Definition:
    """The typed journey, or DefinitionError listing all its problems.

    `segment_id` and `template_id` turn an id as written into a UUID, or
    None when it is malformed; whether the segment or template exists is the
    caller's to check. Every step must have an id: `with_step_ids` first.
    """
    reader = _Reader(segment_id, template_id)
    found = reader.definition(raw, ROOT)
    if reader.problems or found is None:
        raise DefinitionError(reader.problems)
    return found


def event_matches(
    match: EventMatch, name: str | None, properties: dict[str, Any], now: datetime
) -> bool:
    """Whether an event passes a trigger's, an exit's or a waitFor's match, as segments count."""
    return name == match.name and all(
        compare(f.comparison, lookup(properties, f.path), now) for f in match.where
    )


# --- step ids ------------------------------------------------------------------


def with_step_ids(raw: object, previous: object | None = None) -> object:
    """A copy of `raw` in which every step without an id has a new one, "s<N>".

    N counts up past every "s<N>" in `raw` and in `previous` (the definition
    of the version before), so a step keeps its id across edits and a new step
    never takes the id a removed one had. A step whose "id" is null counts as
    without one; anything malformed is left as it is, for `parse` to report.
    """
    copied = copy.deepcopy(raw)
    used = {s["id"] for s in _raw_steps(copied) if isinstance(s.get("id"), str)}
    if previous is not None:
        used |= {s["id"] for s in _raw_steps(previous) if isinstance(s.get("id"), str)}
    numbers = [int(m.group(1)) for m in map(_GENERATED.fullmatch, used) if m is not None]
    counter = max(numbers, default=0)
    for step in _raw_steps(copied):
        if step.get("id") is None:
            counter += 1
            while f"s{counter}" in used:
                counter += 1
            step["id"] = f"s{counter}"
            used.add(step["id"])
    return copied


def _raw_steps(raw: object) -> Iterator[dict[str, Any]]:
    """The step objects of a raw definition, in reading order, as deep as `parse` reads."""
    if isinstance(raw, dict):
        yield from _raw_list(raw.get("steps"), 1)


def _raw_list(raw: object, depth: int) -> Iterator[dict[str, Any]]:
    if not isinstance(raw, list) or depth > MAX_NESTING:
        return
    for step in raw:
        if not isinstance(step, dict):
            continue
        yield step
        for inner in _raw_inner(step):
            yield from _raw_list(inner, depth + 1)


def _raw_inner(step: dict[str, Any]) -> list[object]:
    inner: list[object] = []
    for kind in ("branch", "waitFor"):
        if isinstance(step.get(kind), dict):
            inner += [step[kind].get("then"), step[kind].get("else")]
    if isinstance(step.get("split"), list):
        inner += [p.get("steps") for p in step["split"] if isinstance(p, dict)]
    return inner


# --- the reader ----------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as a marketer would type it, shortened."""
    if isinstance(value, str):
        short = value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
        return json.dumps(short, ensure_ascii=False)
    if isinstance(value, bool) or value is None or is_number(value):
        return json.dumps(value)
    return "a list" if isinstance(value, list) else "an object"


def _listing(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class _Reader:
    segment_id: Callable[[str], UUID | None]
    template_id: Callable[[str], UUID | None]
    problems: list[FieldError] = field(default_factory=list)
    step_paths: dict[str, str] = field(default_factory=dict)  # id: where first seen
    step_count: int = 0

    def refuse(self, path: str, message: str) -> None:
        self.problems.append(FieldError(index=None, field=path, message=message, code="INVALID"))

    def unknown_keys(
        self, raw: dict[str, Any], path: str, keys: tuple[str, ...], what: str
    ) -> None:
        for key in raw:
            if key not in keys:
                self.refuse(
                    f"{path}.{key}",
                    f"unknown key {_show(key)}; {what} has the keys {_listing(keys)}",
                )

    def segments(self, raw: object, path: str) -> Node | None:
        """A segment node read by the segments' parser, its problems added to these."""
        try:
            return segments.parse(raw, segment_id=self.segment_id, root=path)
        except DefinitionError as error:
            self.problems.extend(error.errors)
            return None

    # the definition

    def definition(self, raw: Any, path: str) -> Definition | None:
        if not isinstance(raw, dict):
            self.refuse(
                path,
                'a journey definition must be a JSON object with "trigger" and "steps"; '
                f"found {_show(raw)}",
            )
            return None
        mark = len(self.problems)
        self.unknown_keys(raw, path, _KEYS, "a journey definition")
        trigger = self.trigger(raw, path)
        steps = self.top_steps(raw, path)
        exits = self.exits(raw["exitOn"], f"{path}.exitOn") if "exitOn" in raw else ()
        goal = self.goal(raw["goal"], f"{path}.goal") if "goal" in raw else None
        reentry = (
            self.reentry(raw["reentry"], f"{path}.reentry") if "reentry" in raw else REENTRY_NEVER
        )
        if self.step_count > MAX_STEPS:
            self.refuse(
                f"{path}.steps",
                f"a journey may have at most {MAX_STEPS} steps, counting those inside "
                f"branches, splits and waits; found {self.step_count}",
            )
        if trigger is None or steps is None or exits is None or reentry is None:
            return None
        if len(self.problems) > mark:  # a goal's problems
            return None
        return Definition(trigger, steps, exits, goal, reentry)

    def top_steps(self, raw: dict[str, Any], path: str) -> tuple[Step, ...] | None:
        here = f"{path}.steps"
        if "steps" not in raw:
            self.refuse(
                here, '"steps" is required: a non-empty list of steps such as [{"wait": ...}]'
            )
            return None
        if isinstance(raw["steps"], list) and not raw["steps"]:
            self.refuse(here, '"steps" must hold at least one step')
            return None
        return self.steps(raw["steps"], here, 1)

    def exits(self, raw: Any, path: str) -> tuple[EventMatch, ...] | None:
        if not isinstance(raw, list):
            self.refuse(
                path,
                '"exitOn" must be a list of events such as [{"event": "Order Completed"}]',
            )
            return None
        if len(raw) > MAX_EXITS:
            self.refuse(path, f'"exitOn" may hold at most {MAX_EXITS} events; found {len(raw)}')
            return None
        found = [self.exit_match(item, f"{path}[{i}]") for i, item in enumerate(raw)]
        return None if None in found else tuple(m for m in found if m is not None)

    def exit_match(self, raw: Any, path: str) -> EventMatch | None:
        if not isinstance(raw, dict):
            self.refuse(
                path,
                'an exit must be an object such as {"event": "Order Completed", "where": [...]}',
            )
            return None
        self.unknown_keys(raw, path, _MATCH_KEYS, "an exit")
        return self.match(raw, path, "an exit")

    def match(self, raw: dict[str, Any], path: str, what: str) -> EventMatch | None:
        """The event name and filters of `raw`, read as a segment's event node reads them."""
        if "event" not in raw:
            self.refuse(
                f"{path}.event", f'"event" is required in {what}, such as "Order Completed"'
            )
            # The filters are still checked, so that all problems come at once.
            if "where" in raw:
                self.segments({"event": "-", "where": raw["where"]}, path)
            return None
        node = self.segments({k: raw[k] for k in _MATCH_KEYS if k in raw}, path)
        if not isinstance(node, EventCondition):
            return None
        return EventMatch(node.name, node.where)

    def goal(self, raw: Any, path: str) -> Goal | None:
        if not isinstance(raw, dict):
            self.refuse(
                path,
                '"goal" must be an object such as {"event": "Order Completed", "withinDays": 7}',
            )
            return None
        self.unknown_keys(raw, path, _GOAL_KEYS, "a goal")
        name: str | None = None
        if "event" not in raw:
            self.refuse(f"{path}.event", '"event" is required in a goal, such as "Order Completed"')
        else:
            node = self.segments({"event": raw["event"]}, path)
            name = node.name if isinstance(node, EventCondition) else None
        days = self.days(raw, path, "withinDays", "a goal")
        if name is None or days is None:
            return None
        return Goal(name, timedelta(days=days))

    def days(self, raw: dict[str, Any], path: str, key: str, what: str) -> int | None:
        here = f"{path}.{key}"
        if key not in raw:
            self.refuse(here, f'"{key}" is required in {what}: a number of days such as 7')
            return None
        value = raw[key]
        if not _whole(value) or not 1 <= value <= MAX_DAYS:
            self.refuse(here, f'"{key}" must be a whole number of days from 1 to {MAX_DAYS}')
            return None
        return int(value)

    def reentry(self, raw: Any, path: str) -> str | None:
        if raw not in REENTRY or not isinstance(raw, str):
            self.refuse(
                path,
                f'"reentry" must be one of {_listing(REENTRY)}; found {_show(raw)} '
                "(never: once per profile; after_exit: again once out of the journey; "
                "always: every time the trigger fires)",
            )
            return None
        return raw

    # the trigger

    def trigger(self, raw: dict[str, Any], path: str) -> Trigger | None:
        here = f"{path}.trigger"
        if "trigger" not in raw:
            self.refuse(here, '"trigger" is required, such as {"event": "Product Added"}')
            return None
        trigger = raw["trigger"]
        if not isinstance(trigger, dict):
            self.refuse(
                here,
                'a trigger must be an object such as {"event": "Product Added"}; '
                f"found {_show(trigger)}",
            )
            return None
        kinds = [k for k in TRIGGERS if k in trigger]
        if len(kinds) != 1:
            found = _listing([f'"{k}"' for k in kinds]) if kinds else "none"
            self.refuse(
                here, f"a trigger has exactly one of the keys {_listing(TRIGGERS)}; found {found}"
            )
            return None
        kind = kinds[0]
        self.unknown_keys(trigger, here, _TRIGGER_KEYS[kind], f'a "{kind}" trigger')
        return self.trigger_of(kind, trigger, here)

    def trigger_of(self, kind: str, trigger: dict[str, Any], here: str) -> Trigger | None:
        if kind == "event":
            match = self.match(trigger, here, "a trigger")
            return None if match is None else EventTrigger(match)
        if kind in ("segmentEntered", "segmentExited"):
            return self.segment_trigger(trigger[kind], f"{here}.{kind}", kind == "segmentEntered")
        if kind == "dateTrait":
            return self.date_trigger(trigger, here)
        days = self.days(trigger, here, "inactiveDays", "a trigger")
        return None if days is None else InactivityTrigger(days)

    def segment_trigger(self, raw: Any, path: str, entered: bool) -> SegmentTrigger | None:
        found = self.segment_id(raw) if isinstance(raw, str) and "\x00" not in raw else None
        if found is None:
            self.refuse(path, f"{_show(raw)} is not a segment id")
            return None
        return SegmentTrigger(found, entered=entered)

    def date_trigger(self, raw: dict[str, Any], path: str) -> DateTrigger | None:
        trait = self.trait_path(raw["dateTrait"], f"{path}.dateTrait")
        if raw.get("annual") is not True:
            self.refuse(
                f"{path}.annual",
                '"annual" must be true: a date trigger fires each year on the date the trait holds',
            )
        at = self.time_of_day(raw["at"], f"{path}.at", '"at"') if "at" in raw else DEFAULT_AT
        if trait is None or at is None or raw.get("annual") is not True:
            return None
        return DateTrigger(trait, at)

    def trait_path(self, raw: Any, path: str) -> str | None:
        example = 'such as "birthday" or "dates.anniversary"'
        if not isinstance(raw, str) or not raw or "\x00" in raw:
            self.refuse(path, f'"dateTrait" must be the name of a trait holding a date, {example}')
            return None
        if len(raw) > MAX_PATH_LENGTH:
            self.refuse(path, f'"dateTrait" may be at most {MAX_PATH_LENGTH} characters')
            return None
        if not all(raw.split(".")):
            self.refuse(
                path,
                f'"dateTrait" {_show(raw)} has an empty part: separate the parts of a path '
                f"with single dots, {example}",
            )
            return None
        return raw

    def time_of_day(self, raw: Any, path: str, label: str) -> time | None:
        match = _TIME.fullmatch(raw) if isinstance(raw, str) else None
        if match is None:
            self.refuse(path, f"{label} must be a time of day {_TIME_EXAMPLE}; found {_show(raw)}")
            return None
        return time(int(match.group(1)), int(match.group(2)))

    # steps

    def steps(self, raw: Any, path: str, depth: int) -> tuple[Step, ...] | None:
        if not isinstance(raw, list):
            self.refuse(path, f"{_STEPS_SHAPE}; found {_show(raw)}")
            return None
        if depth > MAX_NESTING:
            if raw:
                self.refuse(f"{path}[0]", f"steps may be nested at most {MAX_NESTING} levels deep")
            return None if raw else ()
        found = [self.step(item, f"{path}[{i}]", depth) for i, item in enumerate(raw)]
        return None if None in found else tuple(s for s in found if s is not None)

    def inner(
        self, raw: dict[str, Any], key: str, path: str, depth: int
    ) -> tuple[Step, ...] | None:
        """The steps under `key` (then, else, steps), none when it is absent."""
        return self.steps(raw[key], f"{path}.{key}", depth + 1) if key in raw else ()

    def step(self, raw: Any, path: str, depth: int) -> Step | None:
        self.step_count += 1
        if not isinstance(raw, dict):
            self.refuse(
                path,
                f'a step must be an object such as {{"wait": {{"hours": 1}}}}; found {_show(raw)}',
            )
            return None
        kinds = [k for k in STEPS if k in raw]
        if len(kinds) != 1:
            found = _listing([f'"{k}"' for k in kinds]) if kinds else "none"
            if not kinds and raw.keys() - {"id"}:
                found += f" (the keys are {_listing([_show(k) for k in raw])})"
            self.refuse(
                path, f"a step has exactly one of the keys {_listing(STEPS)}; found {found}"
            )
            return None
        kind = kinds[0]
        self.unknown_keys(raw, path, ("id", kind), f'a "{kind}" step')
        step_id = self.step_id(raw, path)
        step = self.body(kind, raw[kind], f"{path}.{kind}", step_id or "", depth)
        return None if step_id is None else step

    def body(self, kind: str, raw: Any, path: str, step_id: str, depth: int) -> Step | None:
        read: Callable[[Any, str, str, int], Step | None] = {
            "wait": self.wait,
            "send": self.send,
            "branch": self.branch,
            "split": self.split,
            "waitFor": self.wait_for,
            "exit": self.exit,
        }[kind]
        return read(raw, path, step_id, depth)

    def step_id(self, raw: dict[str, Any], path: str) -> str | None:
        here = f"{path}.id"
        if raw.get("id") is None:
            self.refuse(
                here,
                'the step has no "id"; ids are assigned when the journey is saved, so save it '
                "(or assign them with with_step_ids) before checking it",
            )
            return None
        step_id = raw["id"]
        if not isinstance(step_id, str) or not _STEP_ID.fullmatch(step_id):
            self.refuse(
                here,
                f'"id" must be 1 to {MAX_STEP_ID_LENGTH} characters of A-Z, a-z, 0-9, "_" '
                f'or "-"; found {_show(step_id)}',
            )
            return None
        first = self.step_paths.setdefault(step_id, path)
        if first != path:
            self.refuse(
                here,
                f"{_show(step_id)} is also the id of the step at {first}; every step needs an "
                "id of its own",
            )
            return None
        return step_id

    # durations

    def duration(self, raw: Any, path: str, label: str) -> timedelta | None:
        if not isinstance(raw, dict):
            self.refuse(path, f"{label} must be a duration such as {_DURATION_EXAMPLE}")
            return None
        self.unknown_keys(raw, path, _UNITS, "a duration")
        return self.units(raw, path)

    def units(self, raw: dict[str, Any], path: str) -> timedelta | None:
        """The total of the units in `raw` (other keys are the caller's)."""
        units = [u for u in _UNITS if u in raw]
        if not units:
            if raw:  # its keys were refused as unknown
                return None
            self.refuse(
                path,
                f"a duration needs at least one of {_listing(_UNITS)}, such as {_DURATION_EXAMPLE}",
            )
            return None
        bad = [u for u in units if not _whole(raw[u]) or raw[u] < 0]
        for unit in bad:
            self.refuse(f"{path}.{unit}", f'"{unit}" must be a whole number, 0 or more')
        if bad:
            return None
        # Summed as integers: a huge amount would overflow a timedelta.
        seconds = sum(raw[u] * _UNIT_SECONDS[u] for u in units)
        if seconds == 0:
            self.refuse(path, "a duration must be longer than 0")
            return None
        if seconds > _LONGEST:
            self.refuse(path, f"a duration may be at most {MAX_DAYS} days")
            return None
        return timedelta(seconds=seconds)

    # each kind of step

    def wait(self, raw: Any, path: str, step_id: str, depth: int) -> Wait | None:
        if not isinstance(raw, dict):
            self.refuse(
                path,
                f'"wait" must be a duration such as {_DURATION_EXAMPLE}, or a time of day '
                'such as {"until": "09:00"}',
            )
            return None
        self.unknown_keys(raw, path, (*_UNITS, "until"), "a wait")
        if "until" not in raw:
            duration = self.units(raw, path)
            return None if duration is None else Wait(step_id, duration=duration)
        if any(u in raw for u in _UNITS):
            self.refuse(
                path,
                'a wait is either a duration such as {"hours": 1} or a time of day such as '
                '{"until": "09:00"}, not both',
            )
            return None
        until = self.time_of_day(raw["until"], f"{path}.until", '"until"')
        return None if until is None else Wait(step_id, until=until)

    def send(self, raw: Any, path: str, step_id: str, depth: int) -> Send | None:
        if not isinstance(raw, dict):
            self.refuse(
                path,
                '"send" must be an object such as {"templateId": "...", "purpose": "marketing", '
                '"fromEmail": "news@example.com"}',
            )
            return None
        mark = len(self.problems)
        self.unknown_keys(raw, path, _SEND_KEYS, "a send")
        template = self.template(raw, path)
        purpose = self.purpose(raw, path)
        from_email = self.email(raw, path, "fromEmail")
        from_name = self.from_name(raw, path)
        reply_to = self.email(raw, path, "replyTo") if raw.get("replyTo") is not None else None
        if template is None or purpose is None or from_email is None:
            return None
        if len(self.problems) > mark:
            return None
        return Send(step_id, template, purpose, from_email, from_name, reply_to)

    def template(self, raw: dict[str, Any], path: str) -> UUID | None:
        here = f"{path}.templateId"
        if "templateId" not in raw:
            self.refuse(here, '"templateId" is required: the id of the template to send')
            return None
        value = raw["templateId"]
        found = self.template_id(value) if isinstance(value, str) and "\x00" not in value else None
        if found is None:
            self.refuse(here, f"{_show(value)} is not a template id")
        return found

    def purpose(self, raw: dict[str, Any], path: str) -> str | None:
        here = f"{path}.purpose"
        if "purpose" not in raw:
            self.refuse(
                here,
                '"purpose" is required: the consent purpose of the message, such as "marketing"',
            )
            return None
        if not isinstance(raw["purpose"], str):
            self.refuse(
                here, f'"purpose" must be a name such as "marketing"; found {_show(raw["purpose"])}'
            )
            return None
        try:
            return check_name(raw["purpose"], "purpose")
        except ValidationError as error:
            self.refuse(here, error.message)
            return None

    def email(self, raw: dict[str, Any], path: str, key: str) -> str | None:
        here = f"{path}.{key}"
        if key not in raw:
            self.refuse(
                here, f'"{key}" is required: the address to send from, such as "news@example.com"'
            )
            return None
        value = raw[key]
        if not isinstance(value, str):
            self.refuse(here, f'"{key}" must be an email address; found {_show(value)}')
            return None
        try:
            return validate_email(value.strip(), check_deliverability=False).normalized
        except EmailNotValidError as error:
            self.refuse(here, f'"{key}" {_show(value)} is not an email address: {error}')
            return None

    def from_name(self, raw: dict[str, Any], path: str) -> str | None:
        """The sender's name, None when absent or blank (a problem is recorded if invalid)."""
        value = raw.get("fromName")
        if value is None:
            return None
        here = f"{path}.fromName"
        if not isinstance(value, str) or len(value) > MAX_FROM_NAME or _CONTROL.search(value):
            self.refuse(
                here,
                f'"fromName" must be one line of at most {MAX_FROM_NAME} characters, such as '
                f'"Acme Shop"; found {_show(value)}',
            )
            return None
        return value.strip() or None

    def branch(self, raw: Any, path: str, step_id: str, depth: int) -> Branch | None:
        if not isinstance(raw, dict):
            self.refuse(
                path,
                '"branch" must be an object such as {"if": {"trait": "plan", "op": "eq", '
                '"value": "pro"}, "then": [...], "else": [...]}',
            )
            return None
        self.unknown_keys(raw, path, _BRANCH_KEYS, "a branch")
        condition: Node | None = None
        if "if" in raw:
            condition = self.segments(raw["if"], f"{path}.if")
        else:
            self.refuse(
                f"{path}.if",
                '"if" is required: a condition as in a segment, such as '
                '{"trait": "plan", "op": "eq", "value": "pro"}',
            )
        then = self.inner(raw, "then", path, depth)
        otherwise = self.inner(raw, "else", path, depth)
        if condition is None or then is None or otherwise is None:
            return None
        return Branch(step_id, condition, then, otherwise)

    def split(self, raw: Any, path: str, step_id: str, depth: int) -> Split | None:
        if not isinstance(raw, list) or not _PAIR <= len(raw) <= MAX_SPLIT_PATHS:
            self.refuse(
                path,
                f'"split" must be a list of {_PAIR} to {MAX_SPLIT_PATHS} paths such as '
                '[{"weight": 50, "steps": [...]}, {"weight": 50, "steps": [...]}]',
            )
            if not isinstance(raw, list):
                return None
        paths = [self.split_path(p, f"{path}[{i}]", depth) for i, p in enumerate(raw)]
        if None in paths or not _PAIR <= len(raw) <= MAX_SPLIT_PATHS:
            return None
        return Split(step_id, tuple(p for p in paths if p is not None))

    def split_path(self, raw: Any, path: str, depth: int) -> SplitPath | None:
        if not isinstance(raw, dict):
            self.refuse(
                path, 'a path of a split must be an object such as {"weight": 50, "steps": [...]}'
            )
            return None
        self.unknown_keys(raw, path, _PATH_KEYS, "a path of a split")
        weight: Any = raw.get("weight")
        if not (is_number(weight) and finite(weight) and weight > 0):
            weight = None
            self.refuse(
                f"{path}.weight",
                '"weight" is required: a number above 0, the share of profiles that take this '
                "path (weights 50 and 50, or 1 and 1, split evenly)",
            )
        steps = self.inner(raw, "steps", path, depth)
        if weight is None or steps is None:
            return None
        return SplitPath(float(weight), steps)

    def wait_for(self, raw: Any, path: str, step_id: str, depth: int) -> WaitFor | None:
        if not isinstance(raw, dict):
            self.refuse(
                path,
                '"waitFor" must be an object such as {"event": "Order Completed", '
                '"timeout": {"days": 3}, "then": [...], "else": [...]}',
            )
            return None
        self.unknown_keys(raw, path, _WAIT_FOR_KEYS, "a waitFor")
        match = self.match(raw, path, "a waitFor")
        timeout: timedelta | None = None
        if "timeout" in raw:
            timeout = self.duration(raw["timeout"], f"{path}.timeout", '"timeout"')
        else:
            self.refuse(
                f"{path}.timeout",
                '"timeout" is required: how long to wait for the event, such as {"days": 3}',
            )
        then = self.inner(raw, "then", path, depth)
        otherwise = self.inner(raw, "else", path, depth)
        if match is None or timeout is None or then is None or otherwise is None:
            return None
        return WaitFor(step_id, match, timeout, then, otherwise)

    def exit(self, raw: Any, path: str, step_id: str, depth: int) -> Exit | None:
        if raw != {}:
            self.refuse(path, '"exit" takes no settings: write {"exit": {}}')
            return None
        return Exit(step_id)


# --- the JSON Schema -------------------------------------------------------------

_REF: Final = "#/$defs/"


def _ref(name: str, **extra: Any) -> dict[str, Any]:
    return {"$ref": _REF + name, **extra}


def _step(kind: str, title: str, description: str, body: dict[str, Any]) -> dict[str, Any]:
    return object_schema(title, description, {"id": _ref("stepId"), kind: body}, [kind])


def _event_match(
    title: str, description: str, extra: dict[str, Any], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    segment_event = segments.SCHEMA["$defs"]["event"]["properties"]
    properties = {"event": segment_event["event"], "where": segment_event["where"], **extra}
    return object_schema(title, description, properties, ["event", *required])


def _triggers() -> dict[str, Any]:
    segment = {**_ref("string"), "title": "Segment id", "minLength": 1}
    return {
        "trigger": {
            "title": "Trigger",
            "description": f"What enrolls a profile: one of the keys {_listing(TRIGGERS)}.",
            "oneOf": [
                _ref("eventMatch", title="Event", description="Each time the profile performs "
                     "an event whose properties pass every filter."),
                object_schema("Enters a segment", "When the profile becomes a member of a segment.",
                        {"segmentEntered": segment}, ["segmentEntered"]),
                object_schema("Leaves a segment", "When the profile stops being a member of a segment.",
                        {"segmentExited": segment}, ["segmentExited"]),
                object_schema(
                    "Date", "Each year on the date a trait holds (a birthday), at a time of day "
                    "in the profile's zone.",
                    {
                        "dateTrait": _ref("path", title="Trait holding the date"),
                        "annual": {"const": True, "title": "Every year"},
                        "at": _ref("timeOfDay", default=_hh_mm(DEFAULT_AT)),
                    },
                    ["dateTrait", "annual"],
                ),
                object_schema("Inactive", "When the profile has performed no event for N days.",
                        {"inactiveDays": _ref("days")}, ["inactiveDays"]),
            ],
        },
        "eventMatch": _event_match(
            "Event", "An event by name whose properties pass every filter.", {}
        ),
        "goal": object_schema(
            "Goal",
            "An event that counts as a conversion when it comes within N days of entering.",
            {"event": segments.SCHEMA["$defs"]["event"]["properties"]["event"],
             "withinDays": _ref("days")},
            ["event", "withinDays"],
        ),
        "days": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS},
    }  # fmt: skip


def _steps() -> dict[str, Any]:
    steps = {"type": "array", "maxItems": MAX_STEPS, "items": _ref("step"), "default": []}
    return {
        "step": {
            "title": "Step",
            "description": "Exactly one of the keys " + _listing(STEPS) + ", and an id.",
            "oneOf": [_ref(kind) for kind in STEPS],
        },
        "steps": steps,
        "stepId": {
            "title": "Step id",
            "description": "Unique in the journey and kept across versions; assigned when the "
            "journey is saved if absent.",
            "type": "string",
            "pattern": _STEP_ID_PATTERN,
        },
        "wait": _step(
            "wait", "Wait", "Wait for a duration, or until the next time of day in the "
            "profile's zone.",
            {"oneOf": [
                _ref("duration"),
                object_schema("Until", "The next such time of day.", {"until": _ref("timeOfDay")},
                        ["until"]),
            ]},
        ),
        "send": _step(
            "send", "Send", "Send an email from a template, if the contact gate allows it.",
            object_schema(
                "Email",
                "The template, the consent purpose and the sender.",
                {
                    "templateId": {**_ref("string"), "title": "Template id", "minLength": 1},
                    "purpose": _ref("name", title="Purpose"),
                    "fromEmail": {"title": "From", "type": "string", "format": "email"},
                    "fromName": {"title": "From name", "type": ["string", "null"],
                                 "maxLength": MAX_FROM_NAME, "pattern": _CONTROL_PATTERN},
                    "replyTo": {"title": "Reply to", "type": ["string", "null"],
                                "format": "email"},
                },
                ["templateId", "purpose", "fromEmail"],
            ),
        ),
        "branch": _step(
            "branch", "Branch", "Go on with `then` if the profile meets a condition as a "
            "segment would, with `else` if not.",
            object_schema(
                "Condition and paths",
                "The condition is a segment definition's node.",
                {"if": _ref("node"), "then": _ref("steps"), "else": _ref("steps")},
                ["if"],
            ),
        ),
        "split": _step(
            "split", "Split", "Send each profile down one path at random, by weight.",
            {"type": "array", "minItems": _PAIR, "maxItems": MAX_SPLIT_PATHS,
             "items": _ref("splitPath")},
        ),
        "splitPath": object_schema(
            "Path", "A share of the profiles (weights 50 and 50, or 1 and 1, split evenly).",
            {"weight": {"type": "number", "exclusiveMinimum": 0}, "steps": _ref("steps")},
            ["weight"],
        ),
        "waitFor": _step(
            "waitFor", "Wait for an event", "Go on with `then` when the event comes, with "
            "`else` if the timeout passes first.",
            _event_match("Event and timeout", "The event, how long to wait, and the paths.", {
                "timeout": _ref("duration"), "then": _ref("steps"), "else": _ref("steps"),
            }, ("timeout",)),
        ),
        "exit": _step("exit", "Exit", "Leave the journey.",
                      {"type": "object", "additionalProperties": False}),
    }  # fmt: skip


def _times() -> dict[str, Any]:
    units = {
        unit: {"type": "integer", "minimum": 0, "maximum": _LONGEST // seconds}
        for unit, seconds in _UNIT_SECONDS.items()
    }
    return {
        "duration": {
            "title": "Duration",
            "description": f"The sum of the units given; above 0 and at most {MAX_DAYS} days.",
            "type": "object",
            "properties": units,
            "minProperties": 1,
            "additionalProperties": False,
            "anyOf": [
                {"required": [unit], "properties": {unit: {"minimum": 1}}} for unit in _UNITS
            ],
        },
        "timeOfDay": {
            "title": "Time of day",
            "description": "HH:MM on a 24-hour clock.",
            "type": "string",
            "pattern": _TIME_PATTERN,
        },
    }


def _hh_mm(moment: time) -> str:
    return moment.strftime("%H:%M")


def _schema() -> dict[str, Any]:
    shared = segments.SCHEMA["$defs"]
    own = {**_triggers(), **_steps(), **_times()}
    clash = shared.keys() & own.keys()
    if clash:
        raise ValueError(f"the journey schema's definitions reuse names: {sorted(clash)}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:cdp:journey-definition",
        "title": "Journey definition",
        "description": "What enrolls a profile, and the steps it then takes. A branch's "
        "condition (#/$defs/node) and event filters (#/$defs/propertyFilter) are those of "
        "segment definitions.",
        "type": "object",
        "properties": {
            "trigger": _ref("trigger"),
            "steps": {**_ref("steps"), "minItems": 1},
            "exitOn": {
                "title": "Exit on",
                "description": "Events that take the profile out at once, wherever it is.",
                "type": "array",
                "maxItems": MAX_EXITS,
                "items": _ref("eventMatch"),
                "default": [],
            },
            "goal": _ref("goal"),
            "reentry": {
                "title": "Re-entry",
                "description": "never: once per profile; after_exit: again once out of the "
                "journey; always: every time the trigger fires.",
                "enum": list(REENTRY),
                "default": REENTRY_NEVER,
            },
        },
        "required": ["trigger", "steps"],
        "additionalProperties": False,
        "$defs": {**shared, **own},
    }


# Through JSON, so that the schema shares no objects with the segments' and is plain JSON.
_SCHEMA: Final[dict[str, Any]] = json.loads(json.dumps(_schema()))


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a journey definition, a copy the caller may change."""
    return copy.deepcopy(_SCHEMA)
