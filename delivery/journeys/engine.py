"""Moving one enrollment through its journey's steps (no I/O: the caller supplies a `Context`).

The same code moves real enrollments (`timers`, `inbox`) and simulated ones
(`simulation`), so a simulation is what would happen. An enrollment is at a
step; `waiting` says the step has begun (a wait counting, a waitFor
listening). Advancing runs steps until one waits, an exit, or the end:

- wait: wakes after its duration, or at the next local time of day;
- send: asks for the step's message (the caller queues the delivery, which
  the sending pipeline gates, caps and times) and goes on at once;
- branch: the segment rule, for this profile now;
- split: a stable hash of the enrollment and the step picks the path, so the
  choice does not depend on when or how often it is computed;
- waitFor: wakes at the timeout (the `else` path) unless the event comes
  first (the `then` path, `resume_after_event`);
- exit: leaves at once.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

from cdp.segments.model import Node
from delivery.journeys import model as m
from delivery.journeys.timing import next_time_of_day

ACTIVE, COMPLETED, EXITED = "ACTIVE", "COMPLETED", "EXITED"
# Trees have no cycles, so this only bounds a definition's size.
MAX_STEPS_PER_MOVE: Final = 1000
# A timer this late (a pause, an outage) counts the waits after it from now,
# not from when it was due, so the messages after it do not come at once.
LATE: Final = timedelta(minutes=1)


class Context(Protocol):
    """What advancing needs to know about the enrollment's profile."""

    def zone(self) -> ZoneInfo: ...

    async def holds(self, condition: Node) -> bool: ...


@dataclass(frozen=True)
class Visit:
    """One step run: when, what it was, and what came of it ("sent", "then", "waits until")."""

    step: str
    kind: str
    at: datetime
    outcome: str
    arrived: bool = True  # False for the end of a wait begun in an earlier move


@dataclass
class Position:
    state: str
    step: str | None
    waiting: bool = False
    wake_at: datetime | None = None
    exit_reason: str | None = None


@dataclass
class Moved:
    position: Position
    sends: list[str] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)


def kind(step: m.Step) -> str:
    return {m.Wait: "wait", m.Send: "send", m.Branch: "branch", m.Split: "split",
            m.WaitFor: "waitFor", m.Exit: "exit"}[type(step)]  # fmt: skip


class Plan:
    """A definition indexed by step id, with the step that follows each."""

    def __init__(self, definition: m.Definition) -> None:
        self.definition = definition
        self.steps: dict[str, m.Step] = {}
        self.after: dict[str, str | None] = {}
        self._index(definition.steps, None)
        self.needs_zone = any(isinstance(s, m.Wait) and s.until is not None
                              for s in self.steps.values())  # fmt: skip

    def _index(self, steps: tuple[m.Step, ...], then: str | None) -> None:
        for n, step in enumerate(steps):
            following = steps[n + 1].id if n + 1 < len(steps) else then
            self.steps[step.id] = step
            self.after[step.id] = following
            for _name, inner in m.children(step):
                self._index(inner, following)

    def entry(self, steps: tuple[m.Step, ...], then: str | None) -> str | None:
        return steps[0].id if steps else then

    def start(self) -> Position:
        return self._at(self.entry(self.definition.steps, None))

    def _at(self, step: str | None) -> Position:
        return Position(ACTIVE, step) if step is not None else Position(COMPLETED, None)

    def resume_after_event(self, step_id: str) -> Position:
        """Where a profile waiting at a waitFor goes when its event comes: the `then` path."""
        step = self.steps[step_id]
        if not isinstance(step, m.WaitFor):
            raise TypeError(f"step {step_id} is not a waitFor")
        return self._at(self.entry(step.then, self.after[step_id]))


def split_path(enrollment_id: UUID, step: m.Split) -> int:
    """The path this enrollment takes, in proportion to the weights, the same every time."""
    digest = hashlib.sha256(f"{enrollment_id}:{step.id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(p.weight for p in step.paths)
    running = 0.0
    for n, path in enumerate(step.paths):
        running += path.weight
        if point < running:
            return n
    return len(step.paths) - 1


def _wake(step: m.Wait, base: datetime, ctx: Context) -> datetime:
    if step.until is not None:
        return next_time_of_day(base, step.until, ctx.zone())
    return base + (step.duration or timedelta(0))


def _finish_wait(plan: Plan, current: str, base: datetime, moved: "Moved") -> str | None:
    """The step after a wait that has run out (a waitFor's timeout takes its `else` path)."""
    step = plan.steps[current]
    if isinstance(step, m.WaitFor):
        moved.visits.append(Visit(current, "waitFor", base, "timed out: else", arrived=False))
        return plan.entry(step.otherwise, plan.after[current])
    moved.visits.append(Visit(current, "wait", base, "done", arrived=False))
    return plan.after[current]


async def _run(
    plan: Plan, current: str, *, enrollment_id: UUID, ctx: Context, base: datetime, moved: "Moved"
) -> Position | str | None:
    """Run one step: where the enrollment stops (a Position), or the next step to run."""
    step = plan.steps[current]
    if isinstance(step, m.Wait | m.WaitFor):
        wake = _wake(step, base, ctx) if isinstance(step, m.Wait) else base + step.timeout
        what = "waits" if isinstance(step, m.Wait) else f"waits for {step.match.name}"
        moved.visits.append(Visit(current, kind(step), base, f"{what} until {wake.isoformat()}"))
        return Position(ACTIVE, current, waiting=True, wake_at=wake)
    if isinstance(step, m.Exit):
        moved.visits.append(Visit(current, "exit", base, "exits"))
        return Position(EXITED, current, exit_reason="exit step")
    if isinstance(step, m.Send):
        moved.sends.append(current)
        moved.visits.append(Visit(current, "send", base, "sends"))
        return plan.after[current]
    if isinstance(step, m.Branch):
        holds = await ctx.holds(step.condition)
        moved.visits.append(Visit(current, "branch", base, "then" if holds else "else"))
        return plan.entry(step.then if holds else step.otherwise, plan.after[current])
    chosen = split_path(enrollment_id, step)
    moved.visits.append(Visit(current, "split", base, f"path {chosen}"))
    return plan.entry(step.paths[chosen].steps, plan.after[current])


async def advance(
    plan: Plan, position: Position, enrollment_id: UUID, ctx: Context, now: datetime
) -> Moved:
    """Run the enrollment from `position` at `now` until it waits, exits or completes.

    `position.wake_at`, when set, is when this move was due: the waits it
    starts count from then unless the move is late by more than `LATE`.
    """
    due = position.wake_at
    base = due if due is not None and now - due <= LATE else now
    moved = Moved(position)
    if position.state != ACTIVE:
        return moved
    current = position.step
    if position.waiting and current is not None:
        current = _finish_wait(plan, current, base, moved)
    for _ in range(MAX_STEPS_PER_MOVE):
        if current is None:
            moved.position = Position(COMPLETED, None)
            return moved
        found = await _run(plan, current, enrollment_id=enrollment_id, ctx=ctx, base=base,
                           moved=moved)  # fmt: skip
        if isinstance(found, Position):
            moved.position = found
            return moved
        current = found
    raise RuntimeError(f"more than {MAX_STEPS_PER_MOVE} steps in one move")
