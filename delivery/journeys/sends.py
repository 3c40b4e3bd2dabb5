"""A journey's messages: each send step of each version is a campaign with no segment.

Its deliveries are added as enrollments reach the step, and the sending
pipeline sends them as it sends any campaign's: the contact gate, the
frequency cap, quiet hours, the throttle, DKIM, retries, bounces. A step's
campaign follows its journey: sending while the journey is active, paused
with it, cancelled when it is archived. Its template version is the newest
one when the journey's version is first activated.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson

from cdp.segments.definition import DefinitionError
from delivery.journeys import model as m
from delivery.journeys import repository
from delivery.sending import campaigns as campaign_rules
from delivery.sending import repository as sending_store
from delivery.templates import repository as template_store
from domain.errors import FieldError, NotFoundError, ValidationError
from domain.outbox import Job
from domain.uow import UnitOfWork


def step_name(journey_id: UUID, version: int, step_id: str) -> str:
    return f"journey {journey_id} v{version} step {step_id}"


async def problems(uow: UnitOfWork, definition: m.Definition, raw: Any) -> list[FieldError]:
    """What keeps the send steps from going out, each at its step's JSON path in `raw` (the
    definition with its ids): an unknown template, a sender outside the sending domains."""
    paths = _step_paths(raw.get("steps") if isinstance(raw, dict) else None, "definition.steps")
    found: list[FieldError] = []
    for step in (s for s in m.walk(definition.steps) if isinstance(s, m.Send)):
        where = f"{paths.get(step.id, 'definition')}.send"
        if await template_store.get(uow, step.template_id) is None:
            found.append(FieldError(None, f"{where}.templateId", "no such template"))
        try:
            await campaign_rules.sending_domain(uow, step.from_email)
        except ValidationError as error:
            found.append(FieldError(None, f"{where}.fromEmail", error.message))
    return found


async def check(uow: UnitOfWork, definition: m.Definition, raw: Any) -> None:
    """Refuse, with every problem at its path, a definition whose send steps could not go out."""
    found = await problems(uow, definition, raw)
    if found:
        raise DefinitionError(found)


def _step_paths(steps: Any, path: str) -> dict[str, str]:
    """Each step's JSON path by its id."""
    found: dict[str, str] = {}
    for n, step in enumerate(steps if isinstance(steps, list) else []):
        here = f"{path}[{n}]"
        if not isinstance(step, dict):
            continue
        found[str(step.get("id"))] = here
        for inner_path, inner in _inner_steps(step, here):
            found.update(_step_paths(inner, inner_path))
    return found


def _inner_steps(step: dict[str, Any], here: str) -> list[tuple[str, Any]]:
    lists = [(f"{here}.{kind}.{key}", step[kind].get(key))
             for kind in ("branch", "waitFor") if isinstance(step.get(kind), dict)
             for key in ("then", "else")]  # fmt: skip
    if isinstance(step.get("split"), list):
        lists += [(f"{here}.split[{n}].steps", p.get("steps")) for n, p in enumerate(step["split"])
                  if isinstance(p, dict)]  # fmt: skip
    return lists


async def open_steps(
    uow: UnitOfWork, journey_id: UUID, version: int, definition: m.Definition, status: str
) -> None:
    """Make the campaign of each send step of this version, if not made yet."""
    for step in (s for s in m.walk(definition.steps) if isinstance(s, m.Send)):
        template = await template_store.get(uow, step.template_id)
        if template is None:
            raise NotFoundError(f"step {step.id}: no such template", field="definition")
        from_email, domain_id = await campaign_rules.sending_domain(uow, step.from_email)
        await sending_store.open_step_campaign(uow, sending_store.StepCampaign(
            journey_id, version, step.id, step_name(journey_id, version, step.id), status,
            step.template_id, template.version, step.purpose, from_email, step.from_name,
            step.reply_to, domain_id,
        ))  # fmt: skip


@dataclass(frozen=True)
class Wanted:
    """A message a step asks for: its campaign, to whom, for which entry, and its event."""

    campaign_id: UUID
    profile_id: UUID
    enrollment_id: UUID
    event: dict[str, Any] | None


async def queue(uow: UnitOfWork, wanted: Sequence[Wanted]) -> None:
    """Queue each message (a delivery of the step's campaign), and a batch job per campaign."""
    if not wanted:
        return
    rows = orjson.dumps([{"campaign": str(w.campaign_id), "profile": str(w.profile_id),
                          "enrollment": str(w.enrollment_id), "event": w.event}
                         for w in wanted]).decode()  # fmt: skip
    await sending_store.queue_step_deliveries(uow, rows)
    for campaign_id in sorted({w.campaign_id for w in wanted}):
        await uow.enqueue(Job(campaign_rules.BATCH_ACTOR, (str(uow.workspace_id), str(campaign_id)),
                              queue_name=campaign_rules.QUEUE))  # fmt: skip


async def follow(uow: UnitOfWork, journey_id: UUID, status: str) -> None:
    """Set the journey's step campaigns to SENDING or PAUSED; on SENDING, queue their batches.

    A step the reputation guard paused (it has a `paused_reason`) stays paused
    when its journey resumes: its bounces or complaints are still to be looked at.
    """
    moved = await sending_store.set_step_campaigns(uow, journey_id, status)
    if status == campaign_rules.SENDING:
        for campaign_id in moved:
            await campaign_rules.queue_batches(uow, campaign_id, jobs=1)


conversions = repository.step_conversions
