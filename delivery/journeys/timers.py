"""Due enrollments moved on: claimed in batches, advanced, written back in one short transaction.

A worker asks which workspaces have an enrollment due (a partial index on
`wake_at`, so a million waiting profiles cost nothing until their time), then
claims a batch with `FOR UPDATE SKIP LOCKED`, so workers share the work
without waiting on each other. The batch's moves, its messages (deliveries of
the step campaigns) and their batch jobs commit together or not at all; a
worker that dies mid-batch leaves the rows due, for the next claim.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from consent.keys import Keys
from delivery.journeys import engine, profiles, repository, sends, services, timed
from delivery.journeys.repository import ACTIVE, EnrollmentRow, Move
from delivery.sending import repository as sending_store
from domain.uow import UnitOfWork

BATCH = 500
Units = Callable[[UUID | None], UnitOfWork]


async def due_workspaces(uow: UnitOfWork) -> list[UUID]:
    rows = await uow.fetch("SELECT workspace_id FROM cdp_due_journey_workspaces(%(now)s)",
                           {"now": uow.clock.now()})  # fmt: skip
    return [row.workspace_id for row in rows]


@dataclass(frozen=True)
class Advanced:
    moved: int
    sends: int


async def enter_scheduled(uow: UnitOfWork) -> int:
    """Enrol the profiles whose date or inactivity trigger is due; the caller commits."""
    active = [j for j in await repository.live(uow, lock=True) if j.status == ACTIVE]
    found = await repository.definitions(uow, [(j.id, j.version) for j in active])
    plans = {j.id: (j.version, services.plan(uow.workspace_id, j.id, j.version,
                                             found[(j.id, j.version)]))
             for j in active}  # fmt: skip
    return await timed.enter_due(uow, plans) if plans else 0


async def advance_batch(uow: UnitOfWork, keys: Keys, *, limit: int = BATCH) -> Advanced:
    """Claim up to `limit` due enrollments of active journeys and move each; the caller commits."""
    return await advance(uow, keys, await claim(uow, limit))


async def claim(uow: UnitOfWork, limit: int) -> list[EnrollmentRow]:
    """Up to `limit` due enrollments of the active journeys, locked until the commit."""
    active = [j.id for j in await repository.live(uow) if j.status == ACTIVE]
    return await repository.claim_due(uow, active, limit) if active else []


async def advance(uow: UnitOfWork, keys: Keys, rows: list[EnrollmentRow]) -> Advanced:
    """Move each claimed enrollment, queue the messages its steps ask for, count the arrivals."""
    if not rows:
        return Advanced(0, 0)
    found = await repository.definitions(uow, sorted({(r.journey_id, r.version) for r in rows}))
    plans = {key: services.plan(uow.workspace_id, key[0], key[1], raw)
             for key, raw in found.items()}  # fmt: skip
    with_traits = any(p.needs_zone for p in plans.values())
    people = await profiles.contexts(uow, keys, [r.profile_id for r in rows],
                                     with_traits=with_traits)  # fmt: skip
    campaigns = await sending_store.step_campaigns(uow, sorted({r.journey_id for r in rows}))
    now = uow.clock.now()
    moves: list[Move] = []
    wanted: list[sends.Wanted] = []
    arrivals: Counter[tuple[UUID, str]] = Counter()
    for row in rows:
        plan = plans[(row.journey_id, row.version)]
        moved = await engine.advance(plan, position_of(row), row.id, people[row.profile_id], now)
        moves.append(move_of(row.id, moved.position))
        wanted.extend(sends.Wanted(campaigns[(row.journey_id, row.version, step)],
                                   row.profile_id, row.id, row.event)
                      for step in moved.sends)  # fmt: skip
        arrivals.update((row.journey_id, v.step) for v in moved.visits if v.arrived)
    await repository.record_moves(uow, moves)
    await repository.count_arrivals(uow, arrivals)
    await sends.queue(uow, wanted)
    return Advanced(len(rows), len(wanted))


def position_of(row: EnrollmentRow) -> engine.Position:
    return engine.Position(row.state, row.step, row.waiting, row.wake_at, row.exit_reason)


def move_of(enrollment_id: UUID, position: engine.Position) -> Move:
    wake = position.wake_at if position.state == ACTIVE else None
    return Move(enrollment_id, position.state, position.step, position.waiting, wake,
                position.exit_reason)  # fmt: skip
