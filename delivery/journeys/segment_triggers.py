"""Entries on a segment's entries and exits: the journeys follow the segments' change events.

Each evaluation that moves profiles announces its change through the outbox;
the job that follows it (`cdp.segments.actors`) calls `enter_on_change` in
its transaction, so an entry is enrolled exactly when its change is
followed, and a change followed twice enrols once (its id is in the key).
"""

from uuid import UUID

from cdp.segments import repository as segment_store
from cdp.segments import services as segment_services
from delivery.journeys import model as m
from delivery.journeys import repository, services
from delivery.journeys.repository import ACTIVE, Entry
from domain.ids import new_id
from domain.uow import UnitOfWork


async def enter_on_change(uow: UnitOfWork, change_id: UUID) -> None:
    """Enrol the profiles this change moved into or out of a journey's trigger segment."""
    active = [j for j in await repository.live(uow, lock=True) if j.status == ACTIVE]
    found = await repository.definitions(uow, [(j.id, j.version) for j in active])
    triggered = []
    for journey in active:
        plan = services.plan(uow.workspace_id, journey.id, journey.version,
                             found[(journey.id, journey.version)])  # fmt: skip
        if isinstance(plan.definition.trigger, m.SegmentTrigger):
            triggered.append((journey, plan, plan.definition.trigger))
    if not triggered:
        return
    entries = []
    for row in await segment_store.change_rows(uow, change_id):
        for journey, plan, trigger in triggered:
            if (row.segment_id, row.entered) != (trigger.segment_id, trigger.entered):
                continue
            name = "Segment Entered" if row.entered else "Segment Exited"
            event = {"name": name, "properties": {"segment_id": str(row.segment_id)},
                     "timestamp": row.at.isoformat()}  # fmt: skip
            entries.append(Entry(
                new_id(), journey.id, journey.version, row.profile_id, plan.start().step,
                f"segment:{change_id}:{row.profile_id}", m.ONCE_KEYS[plan.definition.reentry],
                event, row.at,
            ))  # fmt: skip
    await repository.enrol(uow, entries)


segment_services.on_membership_change(enter_on_change)
