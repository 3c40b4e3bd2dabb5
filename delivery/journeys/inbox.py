"""Events into journeys: entries, exits, awaited events and conversions, after ingest commits.

1. Ingest stores events and, in the same transaction (`domain.changes`),
   queues in `journey_inbox` only those whose name a live journey listens
   for (`journey_listens`), with the workspace's job unless one is queued.
   A workspace with no journeys pays one index probe per ingest batch.
2. The job (`run`, in a worker) claims the queued events in order and, for
   each: takes enrolled profiles out on an `exitOn` event; moves those
   waiting for it (`waitFor`) onto its `then` path; marks goal conversions;
   and enrols the profile in each active journey it triggers, as the
   re-entry rule allows. An event's message id enrols it once per journey,
   however often it is delivered.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from cdp import queries
from delivery.journeys import model as m
from delivery.journeys import repository, services
from delivery.journeys.definition import event_matches
from delivery.journeys.engine import ACTIVE, COMPLETED, EXITED, Plan, Position
from delivery.journeys.repository import EnrollmentRow, Entry, JourneyRow, Move
from domain import changes
from domain.ids import new_id
from domain.uow import Statement, UnitOfWork

QUEUE = "journeys"
INBOX_ACTOR = "journey_inbox"
CLAIM_BATCH = 10  # inbox rows (a storing transaction's events each) a batch takes
# An event older than its journey (by its own time, less this margin for
# clock skew) does not enrol: an import of last year's carts sends nothing.
ENTRY_MARGIN = timedelta(minutes=5)


class InboxListener:
    """Queues the new events that a live journey listens for (`domain.changes`)."""

    def event_statements(self, workspace_id: UUID, events: changes.NewEvents) -> list[Statement]:
        named = [n for n, name in enumerate(events.names) if name]
        if not named:
            return []
        return [repository.queue_events(
            workspace_id, [events.ids[n] for n in named], [events.times[n] for n in named],
            [events.names[n] for n in named], job=(new_id(), INBOX_ACTOR, QUEUE),
        )]  # fmt: skip


changes.register_events(InboxListener())


@dataclass(frozen=True)
class Event:
    id: UUID
    profile_id: UUID
    name: str
    message_id: str
    timestamp: datetime
    properties: dict[str, Any]

    def for_templates(self) -> dict[str, Any]:
        return {"name": self.name, "properties": self.properties,
                "timestamp": self.timestamp.isoformat()}  # fmt: skip


async def claim(uow: UnitOfWork, limit: int = CLAIM_BATCH) -> list[Event]:
    """The oldest queued events (deleted from the inbox with this transaction), by their time.

    One batch at a time per workspace (a transaction-scoped advisory lock):
    two jobs side by side could apply a purchase before the cart it follows
    had enrolled anyone.
    """
    rows = await repository.claim_inbox(uow, limit)
    return [Event(r.id, r.profile_id, r.name, r.message_id, r.timestamp, r.properties)
            for r in rows]  # fmt: skip


@dataclass
class _Journeys:
    rows: dict[UUID, JourneyRow]
    plans: dict[tuple[UUID, int], Plan]

    def current(self, journey_id: UUID) -> Plan:
        row = self.rows[journey_id]
        return self.plans[(journey_id, row.version)]


async def _load(uow: UnitOfWork, enrolled: Sequence[EnrollmentRow]) -> _Journeys:
    live = {j.id: j for j in await repository.live(uow)}
    keys = {(j.id, j.version) for j in live.values()} | {(e.journey_id, e.version)
                                                          for e in enrolled}  # fmt: skip
    found = await repository.definitions(uow, sorted(keys))
    plans = {k: services.plan(uow.workspace_id, k[0], k[1], raw) for k, raw in found.items()}
    return _Journeys(live, plans)


def _exit_match(
    plan: Plan, name: str, properties: dict[str, Any], now: datetime
) -> m.EventMatch | None:
    for match in plan.definition.exit_on:
        if event_matches(match, name, properties, now):
            return match
    return None


def on_event(
    plan: Plan, position: Position, name: str, properties: dict[str, Any], now: datetime
) -> Position | None:
    """Where an event takes an enrollment: out (an `exitOn`), onto a waitFor's `then` path
    (due at `now`), or nowhere (None). The inbox and `simulation` both decide with this."""
    if position.state != ACTIVE:
        return None
    match = _exit_match(plan, name, properties, now)
    if match is not None:
        return Position(EXITED, position.step, exit_reason=f"exitOn {match.name}")
    step = plan.steps.get(position.step or "")
    if (
        position.waiting
        and isinstance(step, m.WaitFor)
        and event_matches(step.match, name, properties, now)
    ):
        after = plan.resume_after_event(step.id)
        if after.state == COMPLETED:
            return Position(COMPLETED, None)
        return Position(ACTIVE, after.step, wake_at=now)
    return None


def _on_enrollment(plan: Plan, row: EnrollmentRow, event: Event, now: datetime) -> Move | None:
    """What the event does to one enrollment: an exit, a waitFor answered, or nothing."""
    if event.timestamp < row.trigger_at:
        return None
    if row.event is not None and row.event.get("id") == str(event.id):
        return None
    at = Position(row.state, row.step, row.waiting, row.wake_at, row.exit_reason)
    moved = on_event(plan, at, event.name, event.properties, now)
    if moved is None:
        return None
    return Move(row.id, moved.state, moved.step, moved.waiting, moved.wake_at, moved.exit_reason)


def _apply(journeys: _Journeys, mine: list[EnrollmentRow], event: Event, now: datetime,
           moves: dict[UUID, Move]) -> list[EnrollmentRow]:  # fmt: skip
    """The event's effect on one profile's enrollments (into `moves`); those still active."""
    still = []
    for row in mine:
        move = _on_enrollment(journeys.plans[(row.journey_id, row.version)], row, event, now)
        if move is not None:
            moves[row.id] = move
        if move is None or move.state == ACTIVE:
            still.append(row)
    return still


async def process(uow: UnitOfWork, events: Sequence[Event]) -> int:
    """Apply the events to the workspace's journeys; the caller commits. How many enrolled.

    An entry made by one event is there for the next events of the batch, so
    a purchase right after the cart it follows exits it. Enrollments of
    profiles merged into the event's profile count as its own.
    """
    if not events:
        return 0
    now = uow.clock.now()
    live_ids = [j.id for j in await repository.live(uow, lock=True)]
    merged = await queries.merged_ids(uow, sorted({e.profile_id for e in events}))
    owner = {pid: survivor for survivor, ids in merged.items() for pid in ids}
    enrolled = await repository.active_of(uow, sorted(owner), live_ids)
    journeys = await _load(uow, enrolled)
    by_profile: dict[UUID, list[EnrollmentRow]] = {}
    for row in enrolled:
        by_profile.setdefault(owner.get(row.profile_id, row.profile_id), []).append(row)
    moves: dict[UUID, Move] = {}
    goals: list[tuple[UUID, UUID, datetime, datetime]] = []
    entries: list[Entry] = []
    left: list[tuple[UUID, UUID, str]] = []
    for event in events:
        mine = _apply(journeys, by_profile.get(event.profile_id, []), event, now, moves)
        for journey in journeys.rows.values():
            plan = journeys.current(journey.id)
            exit_match = _exit_match(plan, event.name, event.properties, now)
            if exit_match is not None:
                left.extend((journey.id, pid, f"exitOn {exit_match.name}")
                            for pid in merged.get(event.profile_id, [event.profile_id]))  # fmt: skip
            goal = plan.definition.goal
            if goal is not None and goal.event == event.name:
                goals.append((journey.id, event.profile_id, event.timestamp,
                              event.timestamp - goal.within))  # fmt: skip
            entry = _entry(journey, plan, event, now)
            if entry is not None:
                entries.append(entry)
                mine.append(_as_row(entry, now))
        by_profile[event.profile_id] = mine
    entered = await repository.enrol(uow, entries)
    await repository.record_moves(uow, list(moves.values()))
    await repository.skip_pending(uow, left)
    await repository.convert(uow, goals)
    return len(entered)


def _as_row(entry: Entry, now: datetime) -> EnrollmentRow:
    """A new entry as the enrollment it will be, for the events after it in the batch."""
    return EnrollmentRow(
        entry.id, entry.journey_id, entry.version, entry.profile_id, ACTIVE, entry.step,
        waiting=False, wake_at=now, event=entry.event, trigger_at=entry.trigger_at,
        entered_at=now, finished_at=None, exit_reason=None, converted_at=None,
    )  # fmt: skip


def _entry(journey: JourneyRow, plan: Plan, event: Event, now: datetime) -> Entry | None:
    trigger = plan.definition.trigger
    if journey.status != repository.ACTIVE or not isinstance(trigger, m.EventTrigger):
        return None
    if not event_matches(trigger.match, event.name, event.properties, now):
        return None
    if journey.activated_at is not None and event.timestamp < journey.activated_at - ENTRY_MARGIN:
        return None
    start = plan.start()
    return Entry(
        new_id(), journey.id, journey.version, event.profile_id, start.step, event.message_id,
        m.ONCE_KEYS[plan.definition.reentry], {**event.for_templates(), "id": str(event.id)},
        event.timestamp,
    )  # fmt: skip
