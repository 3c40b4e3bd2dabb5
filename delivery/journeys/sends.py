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
from sqlalchemy import select, update

from cdp.segments.definition import DefinitionError
from delivery.journeys import model as m
from delivery.sending import campaigns as campaign_rules
from delivery.sending.tables import campaigns, deliveries
from delivery.templates import repository as template_store
from domain.errors import FieldError, NotFoundError, ValidationError
from domain.ids import new_id
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
    now = uow.clock.now()
    for step in (s for s in m.walk(definition.steps) if isinstance(s, m.Send)):
        template = await template_store.get(uow, step.template_id)
        if template is None:
            raise NotFoundError(f"step {step.id}: no such template", field="definition")
        from_email, domain_id = await campaign_rules.sending_domain(uow, step.from_email)
        await uow.fetch(
            "INSERT INTO campaigns (workspace_id, id, name, status, template_id, "
            " template_version, purpose, from_email, from_name, reply_to, domain_id, started_at, "
            " journey_id, journey_version, journey_step, created_at, updated_at) "
            "VALUES (%(ws)s, %(id)s, %(name)s, %(status)s, %(template)s, %(tv)s, %(purpose)s, "
            " %(from)s, %(from_name)s, %(reply_to)s, %(domain)s, %(now)s, %(journey)s, "
            " %(version)s, %(step)s, %(now)s, %(now)s) "
            "ON CONFLICT (workspace_id, journey_id, journey_version, journey_step) "
            " WHERE journey_id IS NOT NULL DO NOTHING RETURNING id",
            {"ws": uow.workspace_id, "id": new_id(), "name": step_name(journey_id, version, step.id),
             "status": status, "template": step.template_id, "tv": template.version,
             "purpose": step.purpose, "from": from_email, "from_name": step.from_name,
             "reply_to": step.reply_to, "domain": domain_id, "now": now, "journey": journey_id,
             "version": version, "step": step.id},
        )  # fmt: skip


async def step_campaigns(
    uow: UnitOfWork, journey_ids: Sequence[UUID]
) -> dict[tuple[UUID, int, str], UUID]:
    """The campaign of each (journey, version, step) of these journeys."""
    c = campaigns
    rows = await uow.execute(
        select(c.c.id, c.c.journey_id, c.c.journey_version, c.c.journey_step).where(
            c.c.workspace_id == uow.workspace_id, c.c.journey_id.in_(journey_ids))
    )  # fmt: skip
    return {(r.journey_id, r.journey_version, r.journey_step): r.id for r in rows}


_QUEUE = (
    "INSERT INTO deliveries (workspace_id, id, campaign_id, profile_id, enrollment_id, event, "
    " status, due_at, updated_at) "
    "SELECT %(ws)s, gen_random_uuid(), q.campaign, q.profile, q.enrollment, q.event, 'QUEUED', "
    " %(now)s, %(now)s FROM jsonb_to_recordset(%(rows)s::jsonb) AS q(campaign uuid, "
    " profile uuid, enrollment uuid, event jsonb) ON CONFLICT DO NOTHING"
)


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
    await uow.fetch(_QUEUE, {"ws": uow.workspace_id, "now": uow.clock.now(), "rows": rows})
    for campaign_id in sorted({w.campaign_id for w in wanted}):
        await uow.enqueue(Job(campaign_rules.BATCH_ACTOR, (str(uow.workspace_id), str(campaign_id)),
                              queue_name=campaign_rules.QUEUE))  # fmt: skip


async def follow(uow: UnitOfWork, journey_id: UUID, status: str) -> None:
    """Set the journey's step campaigns to SENDING or PAUSED; on SENDING, queue their batches.

    A step the reputation guard paused (it has a `paused_reason`) stays paused
    when its journey resumes: its bounces or complaints are still to be looked at.
    """
    c = campaigns
    rows = await uow.execute(
        update(c).where(c.c.workspace_id == uow.workspace_id, c.c.journey_id == journey_id,
                        c.c.status.in_((campaign_rules.SENDING, campaign_rules.PAUSED)),
                        c.c.paused_reason.is_(None))
        .values(status=status, updated_at=uow.clock.now()).returning(c.c.id)
    )  # fmt: skip
    if status == campaign_rules.SENDING:
        for row in rows:
            await campaign_rules.queue_batches(uow, row.id, jobs=1)


async def cancel(uow: UnitOfWork, journey_id: UUID, reason: str) -> None:
    """Stop the journey's step campaigns; what they had not sent is skipped with `reason`."""
    c, d, now = campaigns, deliveries, uow.clock.now()
    ids = [r.id for r in await uow.execute(
        update(c).where(c.c.workspace_id == uow.workspace_id, c.c.journey_id == journey_id)
        .values(status=campaign_rules.CANCELLED, finished_at=now, updated_at=now).returning(c.c.id)
    )]  # fmt: skip
    if ids:
        await uow.execute(
            update(d).where(d.c.workspace_id == uow.workspace_id, d.c.campaign_id.in_(ids),
                            d.c.status.in_(("QUEUED", "DEFERRED")))
            .values(status="SKIPPED", reason=reason, updated_at=now)
        )  # fmt: skip


async def conversions(uow: UnitOfWork, journey_id: UUID) -> dict[str, int]:
    """Per send step: the converted enrollments that were sent its message."""
    rows = await uow.fetch(
        "SELECT c.journey_step AS step, count(DISTINCT e.id) AS n FROM campaigns c "
        "JOIN deliveries d ON d.workspace_id = c.workspace_id AND d.campaign_id = c.id "
        "JOIN journey_enrollments e ON e.workspace_id = d.workspace_id AND e.id = d.enrollment_id "
        "WHERE c.workspace_id = %(ws)s AND c.journey_id = %(j)s AND d.status = 'SENT' "
        " AND e.converted_at IS NOT NULL GROUP BY c.journey_step",
        {"ws": uow.workspace_id, "j": journey_id},
    )
    return {row.step: int(row.n) for row in rows}
