"""Campaigns: define, send now or later, pause, resume, cancel; and the audience snapshot.

A campaign's recipients are its segment's members at the moment sending
starts, written as one delivery row each by one statement (`snapshot`).
Each row gets its variant, or the holdout, from a stable hash of the
campaign and the profile, so the split does not depend on the order of
anything. Later changes to the segment do not change the recipients.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, update

from cdp.segments import repository as segment_store
from consent import audit
from consent.model import check_name
from delivery.sending import domains, repository
from delivery.sending.tables import campaigns, deliveries
from delivery.templates import repository as template_store
from delivery.templates import services as template_services
from delivery.templates.compiler import parse_liquid
from delivery.templates.model import TemplateError
from domain import references
from domain.errors import ConflictError, NotFoundError, ValidationError
from domain.ids import new_id
from domain.outbox import Job
from domain.uow import UnitOfWork

CAMPAIGN_TYPE = "campaign"
QUEUE = "sending"
START_ACTOR = "start_campaign"
BATCH_ACTOR = "send_batch"
BUCKETS = 10_000  # the hash's range: a variant's share is counted in these
MAX_VARIANTS = 10
MAX_NAME_LENGTH = 200
MAX_FROM_NAME = 100
# How many batch jobs run side by side for one campaign.
PARALLEL_BATCHES = 8
EARLIEST_ZONE = timedelta(hours=14)

DRAFT, SCHEDULED, SENDING, PAUSED, SENT, CANCELLED = (
    "DRAFT", "SCHEDULED", "SENDING", "PAUSED", "SENT", "CANCELLED",
)  # fmt: skip


@dataclass(frozen=True)
class Variant:
    name: str
    subject: str
    weight: float


@dataclass(frozen=True)
class CampaignInput:
    name: str
    segment_id: UUID
    template_id: UUID
    purpose: str
    from_email: str
    from_name: str | None = None
    reply_to: str | None = None
    variants: Sequence[Variant] = ()
    holdout_percent: float = 0.0
    local_time: bool = False


@dataclass(frozen=True)
class Campaign:
    id: UUID
    name: str
    status: str
    segment_id: UUID | None  # None for a journey's step
    template_id: UUID
    template_version: int | None
    purpose: str
    from_email: str
    from_name: str | None
    reply_to: str | None
    domain_id: UUID
    variants: list[dict[str, Any]]
    holdout_percent: float
    local_time: bool
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime
    paused_reason: str | None = None
    journey_id: UUID | None = None
    journey_step: str | None = None


_COLUMNS = [campaigns.c[n] for n in Campaign.__dataclass_fields__]


def _row(row: Any) -> Campaign:
    return Campaign(**row._asdict())


async def get(uow: UnitOfWork, campaign_id: UUID, *, for_update: bool = False) -> Campaign:
    query = select(*_COLUMNS).where(
        campaigns.c.workspace_id == uow.workspace_id, campaigns.c.id == campaign_id
    )
    if for_update:
        query = query.with_for_update()
    row = (await uow.execute(query)).one_or_none()
    if row is None:
        raise NotFoundError("no such campaign", field="id")
    return _row(row)


async def get_many(uow: UnitOfWork, ids: list[UUID]) -> dict[UUID, Campaign]:
    rows = await uow.execute(
        select(*_COLUMNS).where(
            campaigns.c.workspace_id == uow.workspace_id, campaigns.c.id.in_(ids)
        )
    )
    return {row.id: _row(row) for row in rows}


async def page(uow: UnitOfWork, *, after: UUID | None, limit: int) -> list[Campaign]:
    query = select(*_COLUMNS).where(
        campaigns.c.workspace_id == uow.workspace_id, campaigns.c.journey_id.is_(None)
    )
    if after is not None:
        query = query.where(campaigns.c.id > after)
    rows = await uow.execute(query.order_by(campaigns.c.id).limit(limit))
    return [_row(row) for row in rows]


def _variants(given: Sequence[Variant]) -> list[dict[str, Any]]:
    if len(given) > MAX_VARIANTS:
        raise ValidationError(f"at most {MAX_VARIANTS} variants", field="variants")
    names = [v.name.strip() for v in given]
    if len(set(names)) != len(names) or not all(names):
        raise ValidationError("each variant needs a name of its own", field="variants")
    found = []
    for index, variant in enumerate(given):
        if not variant.weight > 0:
            raise ValidationError("a variant's weight must be above 0",
                                  field=f"variants[{index}].weight")  # fmt: skip
        try:
            parse_liquid(variant.subject, field="subject", html=False)
        except TemplateError as error:
            raise ValidationError(error.message, field=f"variants[{index}].subject") from None
        found.append({"name": names[index], "subject": variant.subject.strip(),
                      "weight": float(variant.weight)})  # fmt: skip
    return found


async def sending_domain(uow: UnitOfWork, from_email: str) -> tuple[str, UUID]:
    try:
        address = validate_email(from_email.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValidationError(f"not an email address: {error}", field="fromEmail") from None
    domain = address.rpartition("@")[2].lower()
    for candidate in await domains.list_all(uow):
        if candidate.domain == domain:
            return address, candidate.id
    raise ValidationError(
        f"{domain} is not a sending domain of this workspace; add it with addSendingDomain",
        field="fromEmail",
    )


async def create(uow: UnitOfWork, actor: audit.Actor, data: CampaignInput) -> Campaign:
    name = data.name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"name must be 1 to {MAX_NAME_LENGTH} characters", field="name")
    if await segment_store.get(uow, data.segment_id) is None:
        raise NotFoundError("no such segment", field="segmentId")
    if await template_store.get(uow, data.template_id) is None:
        raise NotFoundError("no such template", field="templateId")
    purpose = check_name(data.purpose, "purpose")
    if data.from_name and len(data.from_name.strip()) > MAX_FROM_NAME:
        raise ValidationError(f"fromName must be at most {MAX_FROM_NAME} characters",
                              field="fromName")  # fmt: skip
    from_email, domain_id = await sending_domain(uow, data.from_email)
    reply_to = None
    if data.reply_to:
        try:
            reply_to = validate_email(data.reply_to.strip(), check_deliverability=False).normalized
        except EmailNotValidError as error:
            raise ValidationError(f"not an email address: {error}", field="replyTo") from None
    if not 0 <= data.holdout_percent < 100:  # noqa: PLR2004 - a percentage
        raise ValidationError("holdoutPercent must be at least 0 and below 100",
                              field="holdoutPercent")  # fmt: skip
    taken = await uow.execute(
        select(campaigns.c.id).where(campaigns.c.workspace_id == uow.workspace_id,
                                     campaigns.c.name == name)
    )  # fmt: skip
    if taken.first() is not None:
        raise ConflictError(f'a campaign named "{name}" exists', field="name")
    campaign_id, now = new_id(), uow.clock.now()
    await uow.execute(
        campaigns.insert().values(
            workspace_id=uow.workspace_id, id=campaign_id, name=name, status=DRAFT,
            segment_id=data.segment_id, template_id=data.template_id, purpose=purpose,
            from_email=from_email, from_name=(data.from_name or "").strip() or None,
            reply_to=reply_to, domain_id=domain_id, variants=_variants(data.variants),
            holdout_percent=float(data.holdout_percent), local_time=data.local_time,
            created_at=now, updated_at=now,
        )
    )  # fmt: skip
    await audit.record(uow, actor, "campaign.created", object_type=CAMPAIGN_TYPE,
                       object_id=campaign_id, details={"name": name})  # fmt: skip
    return await get(uow, campaign_id)


async def _set(uow: UnitOfWork, campaign_id: UUID, **values: Any) -> None:
    await uow.execute(
        update(campaigns)
        .where(campaigns.c.workspace_id == uow.workspace_id, campaigns.c.id == campaign_id)
        .values(updated_at=uow.clock.now(), **values)
    )


async def send(
    uow: UnitOfWork, actor: audit.Actor, campaign_id: UUID, at: datetime | None = None
) -> Campaign:
    """Send now, or at `at`; refused before anything is queued when it could not go out."""
    campaign = await get(uow, campaign_id, for_update=True)
    _not_a_journey_step(campaign)
    if campaign.status not in (DRAFT, SCHEDULED):
        raise ConflictError(f"the campaign is {campaign.status}, not a draft", field="id")
    if campaign.segment_id is None:
        raise ConflictError("the campaign has no segment", field="id")
    saved = await template_services.current_version(uow, campaign.template_id)
    template_services.check(saved.version.content)  # still compiles
    size = (await segment_store.size(uow, [campaign.segment_id]))[campaign.segment_id]
    if size == 0:
        raise ValidationError("the campaign's segment has no members", field="segmentId")
    now = uow.clock.now()
    # A local-time campaign starts when its hour comes in the earliest zone (UTC+14);
    # each delivery then waits for that hour in its own zone.
    start_at = at - EARLIEST_ZONE if at is not None and campaign.local_time else at
    if at is not None and start_at is not None and start_at > now:
        await _set(uow, campaign_id, status=SCHEDULED, scheduled_at=at)
        delay = int((start_at - now).total_seconds() * 1000)
        await uow.enqueue(Job(START_ACTOR, (str(uow.workspace_id), str(campaign_id)),
                              queue_name=QUEUE, delay_ms=delay))  # fmt: skip
    else:
        await _set(uow, campaign_id, status=SENDING, scheduled_at=at or now)
        await uow.enqueue(Job(START_ACTOR, (str(uow.workspace_id), str(campaign_id)),
                              queue_name=QUEUE))  # fmt: skip
    await audit.record(uow, actor, "campaign.sent", object_type=CAMPAIGN_TYPE,
                       object_id=campaign_id,
                       details={"at": (at or now).isoformat(), "recipients": size})  # fmt: skip
    return await get(uow, campaign_id)


def _variant_case(campaign: Campaign, holdout_buckets: int) -> tuple[str, dict[str, Any]]:
    """SQL choosing each row's variant from its bucket, by the variants' cumulative weights."""
    if not campaign.variants:
        return "NULL::text", {}
    total = sum(v["weight"] for v in campaign.variants)
    params: dict[str, Any] = {}
    cases, running = [], 0.0
    span = BUCKETS - holdout_buckets
    for n, variant in enumerate(campaign.variants[:-1]):
        running += variant["weight"]
        params[f"t{n}"] = holdout_buckets + round(span * running / total)
        params[f"v{n}"] = variant["name"]
        cases.append(f"WHEN s.bucket < %(t{n})s THEN %(v{n})s")
    params["vlast"] = campaign.variants[-1]["name"]
    return f"CASE {' '.join(cases)} ELSE %(vlast)s END", params


async def snapshot(uow: UnitOfWork, campaign: Campaign, at: datetime) -> int:
    """One delivery row per member of the campaign's segment now; the holdout's rows skipped."""
    if campaign.segment_id is None:
        return 0  # a journey's step: its deliveries come as enrollments reach it
    holdout_buckets = round(BUCKETS * campaign.holdout_percent / 100)
    variant, params = _variant_case(campaign, holdout_buckets)
    return await repository.insert_deliveries(
        uow, campaign_id=campaign.id, segment_id=campaign.segment_id,
        seed=campaign.id.int & 0x7FFFFFFFFFFFFFFF, buckets=BUCKETS,
        holdout_buckets=holdout_buckets, variant=variant, variant_params=params, at=at,
    )  # fmt: skip


async def start(uow: UnitOfWork, campaign_id: UUID) -> int:
    """The job of `send`: snapshot the audience and queue the batch jobs; how many recipients."""
    campaign = await get(uow, campaign_id, for_update=True)
    now = uow.clock.now()
    if campaign.status == SCHEDULED:
        early = EARLIEST_ZONE if campaign.local_time else timedelta(0)
        if campaign.scheduled_at is not None and campaign.scheduled_at - early > now:
            return 0  # rescheduled later: that job will start it
        await _set(uow, campaign_id, status=SENDING)
    elif campaign.status != SENDING or campaign.started_at is not None:
        return 0  # paused or cancelled before it started, or started already
    version = await template_store.get(uow, campaign.template_id)
    if version is None:
        await _set(uow, campaign_id, status=CANCELLED, finished_at=now)
        return 0
    await _set(uow, campaign_id, started_at=now, template_version=version.version)
    count = await snapshot(uow, campaign, now)
    await queue_batches(uow, campaign_id)
    return count


async def queue_batches(uow: UnitOfWork, campaign_id: UUID, jobs: int = PARALLEL_BATCHES) -> None:
    for _ in range(jobs):
        await uow.enqueue(Job(BATCH_ACTOR, (str(uow.workspace_id), str(campaign_id)),
                              queue_name=QUEUE))  # fmt: skip


def _not_a_journey_step(campaign: Campaign) -> None:
    if campaign.journey_id is not None:
        raise ConflictError("this is a journey's send step: pause, resume or archive its "
                            "journey instead", field="id")  # fmt: skip


async def pause(uow: UnitOfWork, actor: audit.Actor, campaign_id: UUID) -> Campaign:
    campaign = await get(uow, campaign_id, for_update=True)
    _not_a_journey_step(campaign)
    if campaign.status not in (SENDING, SCHEDULED):
        raise ConflictError(f"the campaign is {campaign.status}: only sending or scheduled "
                            "campaigns pause", field="id")  # fmt: skip
    await _set(uow, campaign_id, status=PAUSED, paused_reason=None)
    await audit.record(uow, actor, "campaign.paused", object_type=CAMPAIGN_TYPE,
                       object_id=campaign_id)  # fmt: skip
    return await get(uow, campaign_id)


async def hold(uow: UnitOfWork, actor: audit.Actor, campaign_id: UUID, *, reason: str) -> bool:
    """Pause the campaign if it is still sending (the reputation guard); whether it was."""
    rows = await uow.execute(
        update(campaigns)
        .where(campaigns.c.workspace_id == uow.workspace_id, campaigns.c.id == campaign_id,
               campaigns.c.status == SENDING)
        .values(status=PAUSED, paused_reason=reason, updated_at=uow.clock.now())
        .returning(campaigns.c.id)
    )  # fmt: skip
    if rows.first() is None:
        return False
    await audit.record(uow, actor, "campaign.paused", object_type=CAMPAIGN_TYPE,
                       object_id=campaign_id, details={"reason": reason})  # fmt: skip
    return True


async def resume(uow: UnitOfWork, actor: audit.Actor, campaign_id: UUID) -> Campaign:
    campaign = await get(uow, campaign_id, for_update=True)
    _not_a_journey_step(campaign)
    if campaign.status != PAUSED:
        raise ConflictError(f"the campaign is {campaign.status}, not paused", field="id")
    await _set(uow, campaign_id, status=SENDING, paused_reason=None)
    if campaign.started_at is None:
        await uow.enqueue(Job(START_ACTOR, (str(uow.workspace_id), str(campaign_id)),
                              queue_name=QUEUE))  # fmt: skip
    else:
        await queue_batches(uow, campaign_id)
    await audit.record(uow, actor, "campaign.resumed", object_type=CAMPAIGN_TYPE,
                       object_id=campaign_id)  # fmt: skip
    return await get(uow, campaign_id)


async def cancel(uow: UnitOfWork, actor: audit.Actor, campaign_id: UUID) -> Campaign:
    """Stop for good: what was not sent is skipped with the reason "cancelled"."""
    campaign = await get(uow, campaign_id, for_update=True)
    _not_a_journey_step(campaign)
    if campaign.status in (SENT, CANCELLED):
        raise ConflictError(f"the campaign is {campaign.status} already", field="id")
    now = uow.clock.now()
    await _set(uow, campaign_id, status=CANCELLED, finished_at=now)
    await uow.execute(
        update(deliveries)
        .where(deliveries.c.workspace_id == uow.workspace_id,
               deliveries.c.campaign_id == campaign_id,
               deliveries.c.status.in_(("QUEUED", "DEFERRED")))
        .values(status="SKIPPED", reason="cancelled", updated_at=now)
    )  # fmt: skip
    await audit.record(uow, actor, "campaign.cancelled", object_type=CAMPAIGN_TYPE,
                       object_id=campaign_id)  # fmt: skip
    return await get(uow, campaign_id)


async def finish(uow: UnitOfWork, campaign_id: UUID, at: datetime) -> None:
    """Nothing is left to send: a campaign still sending is SENT (a journey's step is not: more
    enrollments may reach it)."""
    await uow.execute(
        update(campaigns)
        .where(campaigns.c.workspace_id == uow.workspace_id, campaigns.c.id == campaign_id,
               campaigns.c.status == SENDING, campaigns.c.journey_id.is_(None))
        .values(status=SENT, finished_at=at, updated_at=at)
    )  # fmt: skip


async def counts(uow: UnitOfWork, campaign_ids: list[UUID]) -> dict[UUID, dict[str, int]]:
    """Each campaign's deliveries by status."""
    d = deliveries
    rows = await uow.execute(
        select(d.c.campaign_id, d.c.status, func.count())
        .where(d.c.workspace_id == uow.workspace_id, d.c.campaign_id.in_(campaign_ids))
        .group_by(d.c.campaign_id, d.c.status)
    )
    found: dict[UUID, dict[str, int]] = {c: {} for c in campaign_ids}
    for campaign_id, status, n in rows:
        found[campaign_id][status] = int(n)
    return found


@dataclass(frozen=True)
class DeliveryRow:
    id: UUID
    campaign_id: UUID
    profile_id: UUID
    status: str
    reason: str | None
    variant: str | None
    message_id: str | None
    sent_at: datetime | None


_DELIVERY_COLUMNS = [deliveries.c[n] for n in DeliveryRow.__dataclass_fields__]


async def delivery_page(
    uow: UnitOfWork, campaign_id: UUID, *, after: UUID | None, limit: int, status: str | None
) -> list[DeliveryRow]:
    d = deliveries
    query = select(*_DELIVERY_COLUMNS).where(
        d.c.workspace_id == uow.workspace_id, d.c.campaign_id == campaign_id
    )
    if after is not None:
        query = query.where(d.c.id > after)
    if status is not None:
        query = query.where(d.c.status == status)
    rows = await uow.execute(query.order_by(d.c.id).limit(limit))
    return [DeliveryRow(**row._asdict()) for row in rows]


async def deliveries_by_id(uow: UnitOfWork, ids: list[UUID]) -> dict[UUID, DeliveryRow]:
    d = deliveries
    rows = await uow.execute(
        select(*_DELIVERY_COLUMNS).where(d.c.workspace_id == uow.workspace_id, d.c.id.in_(ids))
    )
    return {row.id: DeliveryRow(**row._asdict()) for row in rows}


async def using_segment(uow: UnitOfWork, segment_id: UUID) -> list[str]:
    """The campaigns that send to this segment, which keep it from being deleted."""
    rows = await uow.execute(
        select(campaigns.c.name)
        .where(
            campaigns.c.workspace_id == uow.workspace_id,
            campaigns.c.segment_id == segment_id,
            campaigns.c.journey_id.is_(None),
        )
        .order_by(campaigns.c.name)
    )
    return [f'campaign "{row.name}"' for row in rows]


references.register("segment", using_segment)
