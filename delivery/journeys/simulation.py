"""A journey simulated for one profile over a virtual clock: the timeline that would happen.

`simulate` writes nothing (it only reads; the caller never commits) and runs
the engine's own code: `engine.advance` for the steps, `inbox.on_event` for
what an event does to an enrollment.

- The clock starts at the request's now. The definition is read as a save
  reads it (step ids assigned, errors named by JSON path, templates and
  senders checked).
- `events` are hypothetical: `{"event": NAME, "properties": {...}, "after":
  DURATION}`, DURATION as in definitions but measured from the start (0 by
  default); at most `MAX_EVENTS`.
- Entry: an event trigger enters at the first event that matches it; a
  dateTrait trigger at the trait's next anniversary; the other triggers at
  the start, as if they fired now. One entry is followed: a later trigger
  event does not enrol again.
- Events and wake-ups are taken in time order, an event first at the same
  instant: an `exitOn` exits, a waitFor's event takes its `then` path, and
  a goal event within the window converts (also after the journey ended,
  as the inbox counts it).
- Branches read the profile's data as it is now (not as the hypothetical
  events would change it). A split picks its path from the profile id, so
  the answer is stable; a real entry picks it from its enrollment's id.
- A send is judged as the sending pipeline would judge it now: the contact
  gate; then quiet hours (the message waits for their end) and the frequency
  cap at the time it would go (the profile's real messages within the cap's
  window and this simulation's earlier ones). A message that would go has its
  subject rendered from the template's current version. The throttle, which
  only delays, is left out.
- It stops when the journey completes or exits, or after `HORIZON` of
  virtual time or `MAX_ENTRIES` timeline entries (outcome ACTIVE, with a note).
"""

import re
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo

from cdp import queries
from cdp.segments import definition as segments
from cdp.segments.definition import DefinitionError
from cdp.segments.model import MISSING, EventCondition, lookup
from consent.keys import Keys
from consent.model import is_marketing
from delivery.journeys import definition as grammar
from delivery.journeys import engine, inbox, profiles, sends, services
from delivery.journeys import model as m
from delivery.journeys.engine import ACTIVE, COMPLETED, EXITED, Plan, Position
from delivery.journeys.timing import next_anniversary
from delivery.sending import policy as policy_rules

# The pipeline's own contact decision, so that a simulation cannot drift from it.
from delivery.sending.pipeline import emails_of, refusals
from delivery.templates import recipients
from delivery.templates import render as rendering
from delivery.templates import services as template_services
from delivery.templates.compiler import CompiledTemplate
from delivery.templates.model import Recipient, RenderError, Sender
from domain.errors import FieldError, NotFoundError
from domain.uow import UnitOfWork

MAX_EVENTS: Final = 100
HORIZON: Final = timedelta(days=400)
MAX_ENTRIES: Final = 1000
NOT_ENTERED: Final = "NOT_ENTERED"
EVENTS_ROOT: Final = "events"
MAX_SHOWN: Final = 5  # problems spelled out in an error's message
_EVENT_KEYS: Final = ("event", "properties", "after")
_UNIT_SECONDS: Final = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
_OFFSET_UNITS: Final = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_EVENT_EXAMPLE: Final = '{"event": "Order Completed", "after": {"minutes": 30}}'
_DATE: Final = re.compile("([0-9]{4})-([0-9]{2})-([0-9]{2})")
_NAMESPACE: Final = uuid.UUID("6f1d4c52-2b8e-4f0c-9a51-3c7e0d9b8a14")
SENDS, WAITS, SKIPS, FAILS = "would send", "would send later", "would skip", "would fail"


class SimulationInputError(DefinitionError):
    """Every problem of a simulation's definition and events; the message names their paths."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(errors)
        shown = "; ".join(e.describe() for e in errors[:MAX_SHOWN])
        more = len(errors) - MAX_SHOWN
        self.message = f"{shown}; and {more} more" if more > 0 else shown
        self.args = (self.message,)


# --- the hypothetical events ----------------------------------------------------------


@dataclass(frozen=True)
class Hypothetical:
    """An event the profile would perform `after` the start."""

    index: int
    name: str
    properties: dict[str, Any]
    after: timedelta


def read_events(raw: object) -> tuple[list[Hypothetical], list[FieldError]]:
    """The events in time order (ties in the order given), and the problems found."""
    problems: list[FieldError] = []
    if raw is None:
        return [], problems
    if not isinstance(raw, list):
        _refuse(
            problems, EVENTS_ROOT, f"events must be a list of events such as [{_EVENT_EXAMPLE}]"
        )
        return [], problems
    if len(raw) > MAX_EVENTS:
        _refuse(problems, EVENTS_ROOT, f"at most {MAX_EVENTS} events; found {len(raw)}")
        return [], problems
    found = [_event(item, n, problems) for n, item in enumerate(raw)]
    events = [e for e in found if e is not None]
    return sorted(events, key=lambda e: (e.after, e.index)), problems


def _refuse(problems: list[FieldError], path: str, message: str) -> None:
    problems.append(FieldError(index=None, field=path, message=message))


def _event(raw: object, index: int, problems: list[FieldError]) -> Hypothetical | None:
    path = f"{EVENTS_ROOT}[{index}]"
    if not isinstance(raw, dict):
        _refuse(problems, path, f"an event must be an object such as {_EVENT_EXAMPLE}")
        return None
    mark = len(problems)
    for key in raw:
        if key not in _EVENT_KEYS:
            _refuse(problems, f"{path}.{key}",
                    f'unknown key "{key}"; an event has the keys {", ".join(_EVENT_KEYS)}')  # fmt: skip
    name = _event_name(raw, path, problems)
    properties = raw.get("properties", {})
    if not isinstance(properties, dict):
        _refuse(problems, f"{path}.properties", '"properties" must be a JSON object')
    after = _after(raw.get("after", {"seconds": 0}), f"{path}.after", problems)
    if len(problems) > mark or name is None or after is None or not isinstance(properties, dict):
        return None
    return Hypothetical(index, name, properties, after)


def _event_name(raw: dict[str, Any], path: str, problems: list[FieldError]) -> str | None:
    if "event" not in raw:
        _refuse(
            problems,
            f"{path}.event",
            '"event" is required: an event name such as "Order Completed"',
        )
        return None
    try:  # the segments' rules for an event name, as the definition's events have
        node = segments.parse({"event": raw["event"]}, segment_id=lambda _: None, root=path)
    except DefinitionError as error:
        problems.extend(error.errors)
        return None
    return node.name if isinstance(node, EventCondition) else None


def _after(raw: object, path: str, problems: list[FieldError]) -> timedelta | None:
    if not isinstance(raw, dict) or not raw:
        _refuse(problems, path, '"after" must be a duration from the start of the simulation, '
                'such as {"minutes": 30} or {"days": 1, "hours": 2}')  # fmt: skip
        return None
    mark = len(problems)
    for unit, amount in raw.items():
        if unit not in _UNIT_SECONDS:
            _refuse(problems, f"{path}.{unit}",
                    f'unknown unit "{unit}"; a duration has {", ".join(_UNIT_SECONDS)}')  # fmt: skip
        elif not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            _refuse(problems, f"{path}.{unit}", f'"{unit}" must be a whole number, 0 or more')
    if len(problems) > mark:
        return None
    # Summed as integers: a huge amount would overflow a timedelta.
    seconds = sum(amount * _UNIT_SECONDS[unit] for unit, amount in raw.items())
    if seconds > HORIZON.total_seconds():
        _refuse(problems, path, f"an event may come at most {HORIZON.days} days after the start")
        return None
    return timedelta(seconds=seconds)


# --- the definition -----------------------------------------------------------------------


async def read(uow: UnitOfWork, raw: object, events: object) -> tuple[Plan, list[Hypothetical]]:
    """The definition's plan and the events, or SimulationInputError naming every problem."""
    problems: list[FieldError] = []
    with_ids = grammar.with_step_ids(raw)
    parsed: m.Definition | None = None
    try:
        parsed = services.parse(with_ids)
    except DefinitionError as error:
        problems.extend(error.errors)
    found, bad = read_events(events)
    problems.extend(bad)
    if parsed is not None:
        problems.extend(await sends.problems(uow, parsed, with_ids))
    if problems or parsed is None:
        raise SimulationInputError(problems)
    return Plan(parsed), found


# --- the timeline ---------------------------------------------------------------------


def human(span: timedelta) -> str:
    """A duration as "1d 2h 30m"; "0s" for none."""
    seconds, parts = int(span.total_seconds()), []
    for unit, size in _OFFSET_UNITS:
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts) or "0s"


@dataclass
class Timeline:
    start: datetime
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def full(self) -> bool:
        return len(self.entries) >= MAX_ENTRIES

    def add(self, at: datetime, kind: str, step: str | None, outcome: str,
            reason: str | None = None, **extra: Any) -> None:  # fmt: skip
        if self.full:
            return
        offset = at - self.start
        self.entries.append({
            "at": at.isoformat(), "offset": human(offset),
            "offsetSeconds": int(offset.total_seconds()), "kind": kind, "step": step,
            "outcome": outcome, "reason": reason, **extra,
        })  # fmt: skip


# --- sends ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    outcome: str
    reason: str | None = None
    send_at: datetime | None = None
    subject: str | None = None


@dataclass
class Sends:
    """How the sending pipeline would treat this profile's messages, read once per purpose."""

    uow: UnitOfWork
    keys: Keys
    links_for: recipients.LinkMaker
    profile_id: UUID
    rules: policy_rules.SendPolicy
    zone: ZoneInfo
    event: dict[str, Any] | None
    sent: list[datetime] = field(default_factory=list)  # this simulation's marketing sends
    _people: dict[str, Recipient] = field(default_factory=dict, init=False)
    _refusals: dict[str, str | None] = field(default_factory=dict, init=False)
    _compiled: dict[UUID, CompiledTemplate] = field(default_factory=dict, init=False)
    _sender: Sender | None = field(default=None, init=False)

    async def judge(self, step: m.Send, at: datetime) -> Judged:
        refusal = await self._refusal(step.purpose)
        if refusal is not None:
            return Judged(SKIPS, refusal)
        send_at, held = self._after_quiet_hours(step.purpose, at)
        capped = await self._capped(step.purpose, send_at)
        if capped is not None:
            return Judged(SKIPS, capped)
        try:
            subject = await self._subject(step)
        except RenderError as error:
            return Judged(FAILS, f"the template does not render: {error}")
        if is_marketing(step.purpose):
            self.sent.append(send_at)
        return Judged(WAITS if held else SENDS, held, send_at, subject)

    async def _person(self, purpose: str) -> Recipient | None:
        if purpose not in self._people:
            found = await recipients.load(self.uow, [self.profile_id], purpose=purpose,
                                          links_for=self.links_for, event=self.event)  # fmt: skip
            if self.profile_id not in found:
                return None
            self._people[purpose] = found[self.profile_id]
        return self._people[purpose]

    async def _refusal(self, purpose: str) -> str | None:
        """The pipeline's reason to skip the message (`pipeline._skip_reason`), or None."""
        if purpose not in self._refusals:
            person = await self._person(purpose)
            if person is None:
                self._refusals[purpose] = "the profile is gone"
            else:
                survivor = UUID(person.profile["id"])
                merged = await queries.merged_ids(self.uow, [survivor])
                held = await queries.identities_of(self.uow, merged[survivor])
                refused = await refusals(self.uow, self.keys, merged, held, purpose)
                no_email = survivor not in emails_of(merged, held)
                self._refusals[purpose] = "no email address" if no_email else refused[survivor]
        return self._refusals[purpose]

    def _after_quiet_hours(self, purpose: str, at: datetime) -> tuple[datetime, str | None]:
        """When the message would go, and why later than `at` (None if it would not wait)."""
        if not is_marketing(purpose):
            return at, None  # transactional messages keep neither quiet hours nor the cap
        until = policy_rules.quiet_until(self.rules, at, self.zone)
        if until is None:
            return at, None
        return until, f"quiet hours: waits until {self.rules.quiet_end} in {self.zone.key}"

    async def _capped(self, purpose: str, send_at: datetime) -> str | None:
        rules = self.rules
        if (
            not is_marketing(purpose)
            or rules.frequency_cap is None
            or rules.frequency_hours is None
        ):
            return None
        since = send_at - timedelta(hours=rules.frequency_hours)
        real = await policy_rules.recent_counts(self.uow, [self.profile_id], since)
        simulated = sum(1 for t in self.sent if since <= t <= send_at)
        if real.get(self.profile_id, 0) + simulated < rules.frequency_cap:
            return None
        return f"frequency cap: {rules.frequency_cap} messages in {rules.frequency_hours} hours"

    async def _subject(self, step: m.Send) -> str:
        person = await self._person(step.purpose)
        if person is None:  # pragma: no cover - `_refusal` skips the message of a gone profile
            raise RenderError("the profile is gone")
        if step.template_id not in self._compiled:
            saved = await template_services.current_version(self.uow, step.template_id)
            self._compiled[step.template_id] = template_services.compiled_version(
                self.uow.workspace_id, saved.version
            )
        if self._sender is None:
            self._sender = await template_services.sender(self.uow)
        return rendering.render(self._compiled[step.template_id], person, self._sender).subject


# --- entering -------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """When the profile enters (None: never), why, and the event that made it enter."""

    at: datetime | None
    reason: str
    event: Hypothetical | None = None


def entry(plan: Plan, traits: dict[str, Any], zone: ZoneInfo, start: datetime,
          events: list[Hypothetical]) -> Entry:  # fmt: skip
    trigger = plan.definition.trigger
    if isinstance(trigger, m.EventTrigger):
        return _event_entry(trigger.match, start, events)
    if isinstance(trigger, m.DateTrigger):
        return _date_entry(trigger, traits, zone, start)
    return Entry(start, "entered as if the trigger fired now")


def _event_entry(match: m.EventMatch, start: datetime, events: list[Hypothetical]) -> Entry:
    for event in events:
        at = start + event.after
        if grammar.event_matches(match, event.name, event.properties, at):
            return Entry(at, f'on "{event.name}"', event)
    filters = " with its filters" if match.where else ""
    return Entry(None, f'no event matches the trigger "{match.name}"{filters}')


def _date_entry(trigger: m.DateTrigger, traits: dict[str, Any], zone: ZoneInfo,
                start: datetime) -> Entry:  # fmt: skip
    value = lookup(traits, tuple(trigger.trait.split(".")))
    if value is MISSING:
        return Entry(None, f'the profile has no trait "{trigger.trait}"')
    day = _date_of(value)
    if day is None:
        return Entry(None, f'the trait "{trigger.trait}" holds {value!r}, not a date')
    at = next_anniversary(start, day, trigger.at, zone)
    return Entry(at, f"on the next anniversary of {trigger.trait} ({value[:10]}), "
                     f"{trigger.at:%H:%M} in {zone.key}")  # fmt: skip


def _date_of(value: Any) -> date | None:
    """The month and day of a date trait, read as `cdp_next_anniversary` reads it in SQL."""
    match = _DATE.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    try:  # in a leap year, so that the 29th of February is a date
        return date(2000, int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


# --- the run ----------------------------------------------------------------------------


@dataclass
class Run:
    """One simulated enrollment, moved by the engine over virtual time."""

    plan: Plan
    ctx: profiles.ProfileContext
    sends: Sends
    timeline: Timeline
    enrollment_id: UUID
    entered_at: datetime
    position: Position
    now: datetime
    converted: bool = False
    note: str | None = None

    @property
    def horizon(self) -> datetime:
        return self.timeline.start + HORIZON

    def at(self, event: Hypothetical) -> datetime:
        return self.timeline.start + event.after


async def follow(run: Run, pending: list[Hypothetical]) -> None:
    """Events and wake-ups in time order, until the journey ends or the simulation's limits."""
    queue = deque(pending)
    while run.position.state == ACTIVE:
        due = run.position.wake_at
        if due is None:  # pragma: no cover - the engine dates every active position
            raise RuntimeError("an active position without a time")
        if run.timeline.full:
            run.note = f"stopped after {MAX_ENTRIES} timeline entries, the profile still active"
            return
        if queue and run.at(queue[0]) <= due:
            await _on_event(run, queue.popleft())
        elif due > run.horizon:
            run.note = (f"stopped after {HORIZON.days} days of simulated time, the profile still "
                        f"at step {run.position.step}")  # fmt: skip
            return
        else:
            await _wake(run, due)
    if run.position.state == COMPLETED:
        run.timeline.add(run.now, "complete", None, "completed")
    for event in queue:  # after the end, only a conversion counts
        _goal(run, event)


async def _wake(run: Run, due: datetime) -> None:
    run.now = due
    moved = await engine.advance(run.plan, run.position, run.enrollment_id, run.ctx, due)
    for visit in moved.visits:
        await _visit(run, visit)
    run.position = moved.position


async def _visit(run: Run, visit: engine.Visit) -> None:
    step = run.plan.steps[visit.step]
    if isinstance(step, m.Send):
        judged = await run.sends.judge(step, visit.at)
        run.timeline.add(
            visit.at, visit.kind, visit.step, judged.outcome, judged.reason,
            templateId=template_services.global_id(step.template_id), purpose=step.purpose,
            fromEmail=step.from_email, subject=judged.subject,
            sendAt=None if judged.send_at is None else judged.send_at.isoformat(),
        )  # fmt: skip
        return
    reason = {
        "branch": "the condition read on the profile's data as it is now",
        "split": "picked from the profile id here; a real entry picks by its enrollment's id",
        "exit": "exit step",
    }.get(visit.kind)
    run.timeline.add(visit.at, visit.kind, visit.step, visit.outcome, reason)


async def _on_event(run: Run, event: Hypothetical) -> None:
    at = run.now = run.at(event)
    was = run.position
    moved = inbox.on_event(run.plan, was, event.name, event.properties, at)
    if moved is None:
        run.timeline.add(at, "event", was.step, "no effect",
                         "matches no exitOn, and the profile is not waiting for it",
                         event=event.name)  # fmt: skip
    elif moved.state == EXITED:
        run.timeline.add(at, "event", was.step, "exits", f"matches {moved.exit_reason}",
                         event=event.name)  # fmt: skip
        run.timeline.add(at, "exit", was.step, "exits", moved.exit_reason)
    else:
        run.timeline.add(at, "event", was.step, "then",
                         f"the event the waitFor {was.step} waits for", event=event.name)  # fmt: skip
    run.position = moved or was
    _goal(run, event)


def _goal(run: Run, event: Hypothetical) -> None:
    """A conversion, as `repository.convert` counts one: the goal event within its window."""
    goal, at = run.plan.definition.goal, run.at(event)
    if goal is None or run.converted or event.name != goal.event:
        return
    if at > run.entered_at + goal.within:
        return
    run.converted = True
    run.timeline.add(at, "goal", None, "converted",
                     f'"{goal.event}" within {goal.within.days} days of entering',
                     event=event.name)  # fmt: skip


# --- the whole ------------------------------------------------------------------------


def _pre_entry(timeline: Timeline, events: list[Hypothetical], why: str) -> None:
    for event in events:
        timeline.add(timeline.start + event.after, "event", None, "no effect", why,
                     event=event.name)  # fmt: skip


def _template_event(
    profile_id: UUID, event: Hypothetical | None, at: datetime
) -> dict[str, Any] | None:
    """The trigger event as a template sees it (`event`), shaped as the inbox shapes it."""
    if event is None:
        return None
    found = inbox.Event(uuid.uuid5(_NAMESPACE, f"{profile_id}:{event.index}"), profile_id,
                        event.name, f"simulated-{event.index}", at, event.properties)  # fmt: skip
    return {**found.for_templates(), "id": str(found.id)}


def _split(events: list[Hypothetical], entered: Entry,
           start: datetime) -> tuple[list[Hypothetical], list[Hypothetical]]:  # fmt: skip
    """The events before the entry, and those after it (the trigger event itself in neither)."""
    if entered.event is not None:
        k = events.index(entered.event)
        return events[:k], events[k + 1 :]
    before = [e for e in events if entered.at is not None and start + e.after < entered.at]
    return before, events[len(before) :]


def _result(timeline: Timeline, run: Run | None, note: str | None) -> dict[str, Any]:
    position = None if run is None else run.position
    exited = position is not None and position.state == EXITED
    return {
        "startedAt": timeline.start.isoformat(),
        "entered": run is not None,
        "enteredAt": None if run is None else run.entered_at.isoformat(),
        "outcome": NOT_ENTERED if position is None else position.state,
        "exitReason": position.exit_reason if exited and position is not None else None,
        "converted": run is not None and run.converted,
        "note": note if run is None else run.note,
        "timeline": timeline.entries,
    }


async def simulate(uow: UnitOfWork, keys: Keys, links_for: recipients.LinkMaker, definition: Any,
                   *, profile_id: UUID, events: Any = None) -> dict[str, Any]:  # fmt: skip
    """The timeline `profile_id` would follow through `definition` with `events`; writes nothing."""
    start = uow.clock.now()
    plan, hypothetical = await read(uow, definition, events)
    profile = (await queries.profiles_by_id(uow, [profile_id])).get(profile_id)
    if profile is None:
        raise NotFoundError("no Profile with this id", field="profileId")
    rules = await policy_rules.get(uow)
    ctx = profiles.ProfileContext(uow, keys, profile_id, profile.traits, rules.default_timezone,
                                  start)  # fmt: skip
    timeline = Timeline(start)
    entered = entry(plan, profile.traits, ctx.zone(), start, hypothetical)
    if entered.at is None:
        timeline.add(start, "enter", None, "never enters", entered.reason)
        _pre_entry(timeline, hypothetical, "the profile never enters")
        return _result(timeline, None, entered.reason)
    before, after = _split(hypothetical, entered, start)
    _pre_entry(timeline, before, "before the profile entered")
    timeline.add(entered.at, "enter", None, "entered", entered.reason,
                 event=None if entered.event is None else entered.event.name)  # fmt: skip
    sends = Sends(uow, keys, links_for, profile_id, rules, ctx.zone(),
                  _template_event(profile_id, entered.event, entered.at))  # fmt: skip
    run = Run(plan, ctx, sends, timeline, uuid.uuid5(_NAMESPACE, str(profile_id)), entered.at,
              replace(plan.start(), wake_at=entered.at), entered.at)  # fmt: skip
    await follow(run, after)
    return _result(timeline, run, None)
