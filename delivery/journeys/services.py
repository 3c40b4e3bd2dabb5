"""Journeys: create, edit (a new version), activate, pause, archive; definitions made into plans.

Lifecycle:
- DRAFT: nothing enters. `activate` makes the send steps' campaigns and
  starts listening for the journey's events.
- ACTIVE: entries come; enrollments move.
- PAUSED: nothing enters, no enrollment moves and no message goes out (the
  step campaigns are paused); exits still apply, so a person who bought
  while the journey was paused gets no reminder after it. `activate` resumes.
- ARCHIVED: everyone still in it exits; what was queued is not sent.

An edit makes a version: enrolled profiles finish the version they entered
with, new entries take the newest.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cdp.segments.services import segment_id_of
from consent import audit
from delivery.journeys import definition as grammar
from delivery.journeys import model as m
from delivery.journeys import repository, sends, timed
from delivery.journeys.engine import Plan
from delivery.journeys.repository import ACTIVE, ARCHIVED, DRAFT, PAUSED, JourneyRow
from delivery.sending import campaigns as campaign_rules
from delivery.sending import repository as sending_store
from domain import references
from domain.errors import ConflictError, NotFoundError, ValidationError
from domain.ids import global_id_of, new_id
from domain.uow import UnitOfWork

JOURNEY_TYPE = "journey"
MAX_NAME_LENGTH = 200
MAX_PLANS = 1024
_plans: dict[tuple[UUID, UUID, int], Plan] = {}


def template_id_of(value: str) -> UUID | None:
    """A template id from its global id, or from the bare UUID."""
    return global_id_of(value, "Template")


def parse(raw: Any) -> m.Definition:
    return grammar.parse(raw, segment_id=segment_id_of, template_id=template_id_of)


def plan(workspace_id: UUID, journey_id: UUID, version: int, raw: Any) -> Plan:
    """The plan of a stored version (versions never change, so plans are kept)."""
    key = (workspace_id, journey_id, version)
    found = _plans.get(key)
    if found is None:
        if len(_plans) >= MAX_PLANS:
            _plans.clear()
        found = _plans[key] = Plan(parse(raw))
    return found


@dataclass(frozen=True)
class JourneyInput:
    name: str
    definition: Any


def _name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"name must be 1 to {MAX_NAME_LENGTH} characters", field="name")
    return name


async def _checked(uow: UnitOfWork, raw: Any, previous: Any) -> tuple[Any, m.Definition]:
    with_ids = grammar.with_step_ids(raw, previous)
    parsed = parse(with_ids)
    await sends.check(uow, parsed, with_ids)
    return with_ids, parsed


async def name_taken(uow: UnitOfWork, name: str) -> bool:
    return await repository.name_taken(uow, name, other_than=None)


async def get(uow: UnitOfWork, journey_id: UUID, *, for_update: bool = False) -> JourneyRow:
    found = await repository.get(uow, journey_id, for_update=for_update)
    if found is None:
        raise NotFoundError("no such journey", field="id")
    return found


async def create(uow: UnitOfWork, actor: audit.Actor, data: JourneyInput) -> JourneyRow:
    name = _name(data.name)
    if await repository.name_taken(uow, name, other_than=None):
        raise ConflictError(f'a journey named "{name}" exists', field="name")
    definition, _parsed = await _checked(uow, data.definition, None)
    journey_id = new_id()
    await repository.insert(uow, journey_id, name, definition)
    await audit.record(uow, actor, "journey.created", object_type=JOURNEY_TYPE,
                       object_id=journey_id, details={"name": name})  # fmt: skip
    return await get(uow, journey_id)


async def current_definition(uow: UnitOfWork, journey: JourneyRow) -> Any:
    found = await repository.definitions(uow, [(journey.id, journey.version)])
    return found[(journey.id, journey.version)]


async def update(
    uow: UnitOfWork, actor: audit.Actor, journey_id: UUID, data: JourneyInput
) -> JourneyRow:
    journey = await get(uow, journey_id, for_update=True)
    if journey.status == ARCHIVED:
        raise ConflictError("the journey is archived", field="id")
    name = _name(data.name)
    if await repository.name_taken(uow, name, other_than=journey_id):
        raise ConflictError(f'a journey named "{name}" exists', field="name")
    previous = await current_definition(uow, journey)
    definition, parsed = await _checked(uow, data.definition, previous)
    version = journey.version
    if definition != previous:
        version += 1
        await repository.insert_version(uow, journey_id, version, definition)
        if journey.status in (ACTIVE, PAUSED):
            status = campaign_rules.SENDING if journey.status == ACTIVE else campaign_rules.PAUSED
            await sends.open_steps(uow, journey_id, version, parsed, status)
            await timed.follow(uow, journey_id, parsed.trigger)
    await repository.set_journey(uow, journey_id, name=name, version=version)
    if journey.status in (ACTIVE, PAUSED):
        await _listen(uow, journey_id)
    await audit.record(uow, actor, "journey.updated", object_type=JOURNEY_TYPE,
                       object_id=journey_id, details={"version": version})  # fmt: skip
    return await get(uow, journey_id)


async def _listen(uow: UnitOfWork, journey_id: UUID) -> None:
    """Listen for every event any version reads: enrolled profiles may be on an older one."""
    names: set[str] = set()
    for raw in (await repository.all_definitions(uow, journey_id)).values():
        names |= m.event_names(parse(raw))
    await repository.set_listens(uow, journey_id, sorted(names))


async def activate(uow: UnitOfWork, actor: audit.Actor, journey_id: UUID) -> JourneyRow:
    """Start a draft, or resume a paused journey."""
    journey = await get(uow, journey_id, for_update=True)
    if journey.status not in (DRAFT, PAUSED):
        raise ConflictError(f"the journey is {journey.status}: only a draft or a paused journey "
                            "can be activated", field="id")  # fmt: skip
    parsed = parse(await current_definition(uow, journey))
    await sends.open_steps(uow, journey_id, journey.version, parsed, campaign_rules.SENDING)
    await timed.follow(uow, journey_id, parsed.trigger)
    await sends.follow(uow, journey_id, campaign_rules.SENDING)
    resumed = journey.status == PAUSED
    values: dict[str, Any] = {"status": ACTIVE}
    if journey.activated_at is None:
        values["activated_at"] = uow.clock.now()
    await repository.set_journey(uow, journey_id, **values)
    await _listen(uow, journey_id)
    await audit.record(uow, actor, "journey.resumed" if resumed else "journey.activated",
                       object_type=JOURNEY_TYPE, object_id=journey_id)  # fmt: skip
    return await get(uow, journey_id)


async def pause(uow: UnitOfWork, actor: audit.Actor, journey_id: UUID) -> JourneyRow:
    journey = await get(uow, journey_id, for_update=True)
    if journey.status != ACTIVE:
        raise ConflictError(f"the journey is {journey.status}, not active", field="id")
    await repository.set_journey(uow, journey_id, status=PAUSED)
    await sends.follow(uow, journey_id, campaign_rules.PAUSED)
    await audit.record(uow, actor, "journey.paused", object_type=JOURNEY_TYPE,
                       object_id=journey_id)  # fmt: skip
    return await get(uow, journey_id)


async def archive(uow: UnitOfWork, actor: audit.Actor, journey_id: UUID) -> JourneyRow:
    journey = await get(uow, journey_id, for_update=True)
    if journey.status == ARCHIVED:
        raise ConflictError("the journey is archived already", field="id")
    exited = await repository.exit_all(uow, journey_id, "journey archived")
    await sending_store.cancel_step_campaigns(uow, journey_id, "journey archived")
    await repository.set_listens(uow, journey_id, [])
    await timed.follow(uow, journey_id, None)
    await repository.set_journey(uow, journey_id, status=ARCHIVED)
    await audit.record(uow, actor, "journey.archived", object_type=JOURNEY_TYPE,
                       object_id=journey_id, details={"exited": exited})  # fmt: skip
    return await get(uow, journey_id)


async def _users(
    uow: UnitOfWork, wanted: Callable[[m.Definition], set[UUID]], object_id: UUID
) -> list[str]:
    """The journeys, not archived, whose some version refers to the object."""
    found = []
    for journey in await repository.not_archived(uow):
        for raw in (await repository.all_definitions(uow, journey.id)).values():
            if object_id in wanted(parse(raw)):
                found.append(f'journey "{journey.name}"')
                break
    return found


async def using_template(uow: UnitOfWork, template_id: UUID) -> list[str]:
    return await _users(uow, m.templates_used, template_id)


async def using_segment(uow: UnitOfWork, segment_id: UUID) -> list[str]:
    return await _users(uow, m.segments_used, segment_id)


references.register("template", using_template)
references.register("segment", using_segment)
