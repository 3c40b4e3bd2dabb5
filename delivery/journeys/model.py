"""A journey definition as typed nodes (no I/O).

The grammar is in docs/journeys.md; `definition.parse` turns the JSON into
these nodes. Every step has an `id`, unique in its definition and kept
across versions, so statistics and enrollments can name a step.
"""

from dataclasses import dataclass
from datetime import time, timedelta
from typing import Final
from uuid import UUID

from cdp.segments.model import Node, PropertyFilter, referenced_segments

REENTRY_NEVER, REENTRY_AFTER_EXIT, REENTRY_ALWAYS = "never", "after_exit", "always"
REENTRY: Final = (REENTRY_NEVER, REENTRY_AFTER_EXIT, REENTRY_ALWAYS)
# What an enrollment holds in `once_key` under each rule (tables.py says why).
ONCE_KEYS: Final = {REENTRY_NEVER: "once", REENTRY_AFTER_EXIT: "active", REENTRY_ALWAYS: None}


@dataclass(frozen=True)
class EventMatch:
    """An event by name whose properties pass every filter (the segments' `where`)."""

    name: str
    where: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class EventTrigger:
    match: EventMatch


@dataclass(frozen=True)
class SegmentTrigger:
    segment_id: UUID
    entered: bool  # False: on leaving the segment


@dataclass(frozen=True)
class DateTrigger:
    """Each year on the date held in a trait (a birthday), at a local time of day."""

    trait: str
    at: time


@dataclass(frozen=True)
class InactivityTrigger:
    days: int


Trigger = EventTrigger | SegmentTrigger | DateTrigger | InactivityTrigger


@dataclass(frozen=True)
class Goal:
    event: str
    within: timedelta


@dataclass(frozen=True)
class Wait:
    """Either a duration, or until the next local time of day (`until`)."""

    id: str
    duration: timedelta | None = None
    until: time | None = None


@dataclass(frozen=True)
class Send:
    id: str
    template_id: UUID
    purpose: str
    from_email: str
    from_name: str | None = None
    reply_to: str | None = None


@dataclass(frozen=True)
class Branch:
    id: str
    condition: Node
    then: tuple["Step", ...] = ()
    otherwise: tuple["Step", ...] = ()


@dataclass(frozen=True)
class SplitPath:
    weight: float
    steps: tuple["Step", ...] = ()


@dataclass(frozen=True)
class Split:
    id: str
    paths: tuple[SplitPath, ...] = ()


@dataclass(frozen=True)
class WaitFor:
    """Wait for an event; `then` if it comes before the timeout, `otherwise` if not."""

    id: str
    match: EventMatch
    timeout: timedelta
    then: tuple["Step", ...] = ()
    otherwise: tuple["Step", ...] = ()


@dataclass(frozen=True)
class Exit:
    id: str


Step = Wait | Send | Branch | Split | WaitFor | Exit


@dataclass(frozen=True)
class Definition:
    trigger: Trigger
    steps: tuple[Step, ...]
    exit_on: tuple[EventMatch, ...] = ()
    goal: Goal | None = None
    reentry: str = REENTRY_NEVER


def children(step: Step) -> list[tuple[str, tuple[Step, ...]]]:
    """The step lists inside a step, each with its name ("then", "else", "paths[0]")."""
    if isinstance(step, Branch | WaitFor):
        return [("then", step.then), ("else", step.otherwise)]
    if isinstance(step, Split):
        return [(f"paths[{n}]", path.steps) for n, path in enumerate(step.paths)]
    return []


def walk(steps: tuple[Step, ...]) -> list[Step]:
    """Every step, depth first, in the order a reader sees them."""
    found: list[Step] = []
    for step in steps:
        found.append(step)
        for _name, inner in children(step):
            found.extend(walk(inner))
    return found


def event_names(definition: Definition) -> frozenset[str]:
    """The event names the journey listens for: trigger, exits, waits and goal."""
    names = {m.name for m in definition.exit_on}
    if isinstance(definition.trigger, EventTrigger):
        names.add(definition.trigger.match.name)
    names.update(s.match.name for s in walk(definition.steps) if isinstance(s, WaitFor))
    if definition.goal is not None:
        names.add(definition.goal.event)
    return frozenset(names)


def templates_used(definition: Definition) -> set[UUID]:
    return {s.template_id for s in walk(definition.steps) if isinstance(s, Send)}


def segments_used(definition: Definition) -> set[UUID]:
    """The segments the trigger and the branches read."""
    found = {r for s in walk(definition.steps) if isinstance(s, Branch)
             for r in referenced_segments(s.condition)}  # fmt: skip
    if isinstance(definition.trigger, SegmentTrigger):
        found.add(definition.trigger.segment_id)
    return found
