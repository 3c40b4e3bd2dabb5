"""The sending SQL: the audience snapshot, claiming a batch, recording outcomes, what is left,
and the step campaigns of journeys."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update

from delivery.sending.tables import campaigns, deliveries
from domain.ids import new_id
from domain.uow import Autocommit, Statement, UnitOfWork

_ASYNC_COMMIT = Statement("SELECT set_config('synchronous_commit', 'off', true)", {})
# The rows of a dead worker's batch first (`ix_deliveries_leased`, its lease passed),
# then free rows by due time (`ix_deliveries_due`, which a claimed row leaves).
_CLAIM = (
    "WITH lapsed AS (SELECT id FROM deliveries WHERE workspace_id = %(ws)s "
    " AND campaign_id = %(c)s AND status IN ('QUEUED', 'DEFERRED') "
    " AND lease_until IS NOT NULL AND lease_until < %(now)s AND due_at <= %(now)s "
    " ORDER BY lease_until LIMIT %(n)s FOR UPDATE SKIP LOCKED), "
    "free AS (SELECT id FROM deliveries WHERE workspace_id = %(ws)s AND campaign_id = %(c)s "
    " AND status IN ('QUEUED', 'DEFERRED') AND lease_until IS NULL AND due_at <= %(now)s "
    " ORDER BY due_at LIMIT %(n)s - (SELECT count(*) FROM lapsed) FOR UPDATE SKIP LOCKED) "
    "UPDATE deliveries d SET lease_until = %(lease)s, attempts = d.attempts + 1, "
    " updated_at = %(now)s "
    "WHERE d.workspace_id = %(ws)s AND d.id IN (SELECT id FROM lapsed UNION ALL SELECT id FROM free) "
    "RETURNING d.id, d.profile_id, d.variant, d.attempts, d.event"
)
_RECORD = (
    "UPDATE deliveries SET status = %(status)s, reason = %(reason)s, "
    " message_id = COALESCE(%(message_id)s, message_id), sent_at = COALESCE(%(sent_at)s, sent_at), "
    " due_at = COALESCE(%(due_at)s, due_at), lease_until = NULL, updated_at = %(now)s "
    "WHERE workspace_id = %(ws)s AND id = %(id)s"
)

_RECORD_SENT = (
    "UPDATE deliveries SET status = 'SENT', reason = NULL, message_id = %(message_id)s, "
    " sent_at = %(at)s, lease_until = NULL, updated_at = %(at)s "
    "WHERE workspace_id = %(ws)s AND id = %(id)s"
)


@dataclass(frozen=True)
class Claimed:
    id: UUID
    profile_id: UUID
    variant: str | None
    attempts: int
    event: dict[str, Any] | None = None  # a journey's trigger event


async def claim(
    uow: UnitOfWork, campaign_id: UUID, *, limit: int, until: datetime
) -> list[Claimed]:
    """Up to `limit` due deliveries no worker holds, held from now `until` (the lease)."""
    rows = await uow.fetch(
        _CLAIM,
        {"ws": uow.workspace_id, "c": campaign_id, "now": uow.clock.now(), "lease": until,
         "n": limit},
    )  # fmt: skip
    return [Claimed(r.id, r.profile_id, r.variant, r.attempts, r.event) for r in rows]


_RENEW = (
    "UPDATE deliveries SET lease_until = %(until)s WHERE workspace_id = %(ws)s "
    "AND id = ANY(%(ids)s) AND lease_until = %(held)s RETURNING id"
)


async def renew(
    out: Autocommit, workspace_id: UUID, ids: list[UUID], *, held: datetime, until: datetime
) -> set[UUID]:
    """Hold the deliveries longer; those still held under the lease `held` (the others went
    to another worker when it passed)."""
    rows = await out.fetch(
        Statement(_RENEW, {"ws": workspace_id, "ids": ids, "held": held, "until": until})
    )
    return {row.id for row in rows}


def _outcome(
    workspace_id: UUID,
    delivery_id: UUID,
    now: datetime,
    *,
    status: str,
    reason: str | None,
    message_id: str | None,
    sent_at: datetime | None,
    due_at: datetime | None,
) -> Statement:
    params = {
        "ws": workspace_id, "id": delivery_id, "status": status, "reason": reason,
        "message_id": message_id, "sent_at": sent_at, "due_at": due_at, "now": now,
    }  # fmt: skip
    return Statement(_RECORD, params, prepare=True)


def record(
    uow: UnitOfWork, delivery_id: UUID, *, status: str, reason: str, due_at: datetime | None = None
) -> None:
    """A delivery skipped or held before sending, sent with the caller's commit in one round
    trip (and committed without waiting for the disk)."""
    outcome = _outcome(uow.workspace_id, delivery_id, uow.clock.now(), status=status,
                       reason=reason, message_id=None, sent_at=None, due_at=due_at)  # fmt: skip
    uow.defer(_ASYNC_COMMIT, outcome)


# Several deliveries' SENT outcomes (`sent_records`). `id = ANY` keeps the
# update a probe of the primary key per delivery, whatever the statistics.
_RECORD_SENT_MANY = (
    "UPDATE deliveries d SET status = 'SENT', reason = NULL, message_id = u.message_id, "
    " sent_at = u.at, lease_until = NULL, updated_at = u.at "
    "FROM unnest(%(ids)s::uuid[], %(message_ids)s::text[], %(ats)s::timestamptz[]) "
    " AS u(id, message_id, at) "
    "WHERE d.workspace_id = %(ws)s AND d.id = ANY(%(ids)s::uuid[]) AND d.id = u.id"
)


async def record_sent(
    out: Autocommit, workspace_id: UUID, sent: list[tuple[UUID, str, datetime]]
) -> None:
    """Deliveries SENT, each (id, Message-ID, when), committed before this returns."""
    if len(sent) == 1:
        [(delivery_id, message_id, at)] = sent
        params = {"ws": workspace_id, "id": delivery_id, "message_id": message_id, "at": at}
        await out.execute(Statement(_RECORD_SENT, params, prepare=True))
        return
    ids, message_ids, ats = (list(column) for column in zip(*sent, strict=True))
    params = {"ws": workspace_id, "ids": ids, "message_ids": message_ids, "ats": ats}
    await out.execute(Statement(_RECORD_SENT_MANY, params, prepare=True))


async def record_now(
    out: Autocommit,
    workspace_id: UUID,
    delivery_id: UUID,
    *,
    status: str,
    reason: str | None,
    due_at: datetime | None = None,
) -> None:
    """One delivery's outcome other than SENT (`record_sent`), committed before this returns
    (`UnitOfWork.autocommit`)."""
    await out.execute(_outcome(workspace_id, delivery_id, out.clock.now(), status=status,
                               reason=reason, message_id=None, sent_at=None,
                               due_at=due_at))  # fmt: skip


async def status(out: Autocommit, workspace_id: UUID, campaign_id: UUID) -> str | None:
    """The campaign's status alone, for a sending batch's look at whether it was paused."""
    rows = await out.fetch(Statement(
        "SELECT status FROM campaigns WHERE workspace_id = %(ws)s AND id = %(id)s",
        {"ws": workspace_id, "id": campaign_id}, prepare=True,
    ))  # fmt: skip
    return str(rows[0].status) if rows else None


async def release(uow: UnitOfWork, ids: list[UUID], *, held: datetime) -> None:
    """Let go of deliveries held under the lease `held`, for the next claim."""
    await uow.execute(
        update(deliveries)
        .where(deliveries.c.workspace_id == uow.workspace_id, deliveries.c.id.in_(ids),
               deliveries.c.lease_until == held)
        .values(lease_until=None)
    )  # fmt: skip


@dataclass(frozen=True)
class Waiting:
    count: int
    next_due: datetime | None
    last_lease: datetime | None


async def waiting(uow: UnitOfWork, campaign_id: UUID) -> Waiting:
    """How many of the campaign's deliveries are still to send, the soonest due, the last held."""
    [row] = await uow.fetch(_WAITING, {"ws": uow.workspace_id, "c": campaign_id})
    return Waiting(int(row.n), row.due, row.lease)


# The free rows and the held ones each by their own index.
_WAITING = (
    "SELECT sum(n) AS n, min(due) AS due, max(lease) AS lease FROM ("
    " SELECT count(*) AS n, min(due_at) AS due, NULL::timestamptz AS lease FROM deliveries "
    "  WHERE workspace_id = %(ws)s AND campaign_id = %(c)s "
    "  AND status IN ('QUEUED', 'DEFERRED') AND lease_until IS NULL "
    " UNION ALL "
    " SELECT count(*), min(due_at), max(lease_until) FROM deliveries "
    "  WHERE workspace_id = %(ws)s AND campaign_id = %(c)s "
    "  AND status IN ('QUEUED', 'DEFERRED') AND lease_until IS NOT NULL) AS w"
)


async def insert_deliveries(
    uow: UnitOfWork,
    *,
    campaign_id: UUID,
    segment_id: UUID,
    seed: int,
    buckets: int,
    holdout_buckets: int,
    variant: str,
    variant_params: dict[str, Any],
    at: datetime,
) -> int:
    """A delivery row per member of the segment, in one statement; how many.

    Each member's bucket is a stable hash of its profile id (seeded by the
    campaign); buckets below `holdout_buckets` are the holdout, SKIPPED, and
    `variant` (SQL over `s.bucket`, fixed fragments with parameters) names
    the others' variants.
    """
    rows = await uow.fetch(
        "WITH s AS (SELECT m.profile_id, "  # noqa: S608 - fixed fragments
        " mod(abs(hashtextextended(m.profile_id::text, %(seed)s)), %(buckets)s) AS bucket "
        " FROM segment_members m WHERE m.workspace_id = %(ws)s AND m.segment_id = %(segment)s) "
        "INSERT INTO deliveries (workspace_id, id, campaign_id, profile_id, variant, holdout, "
        " status, reason, due_at, updated_at) "
        "SELECT %(ws)s, gen_random_uuid(), %(campaign)s, s.profile_id, "
        f" CASE WHEN s.bucket < %(holdout)s THEN NULL ELSE {variant} END, "
        " s.bucket < %(holdout)s, "
        " CASE WHEN s.bucket < %(holdout)s THEN 'SKIPPED' ELSE 'QUEUED' END, "
        " CASE WHEN s.bucket < %(holdout)s THEN 'holdout' END, %(at)s, %(at)s FROM s "
        "ON CONFLICT DO NOTHING RETURNING 1",
        {
            "ws": uow.workspace_id, "segment": segment_id, "campaign": campaign_id, "seed": seed,
            "buckets": buckets, "holdout": holdout_buckets, "at": at, **variant_params,
        },
    )  # fmt: skip
    return len(rows)


_FILL_BUCKETS = (
    "INSERT INTO send_buckets (workspace_id, key, tokens, refreshed_at) "
    "SELECT %(ws)s, w.k, w.b, %(now)s FROM unnest(%(keys)s::text[], %(bursts)s::float8[]) AS w(k, b) "
    "ORDER BY w.k ON CONFLICT DO NOTHING"
)
# Each bucket refilled for the time since it was last taken from (up to its
# burst), then as many tokens taken as it holds whole, up to what is wanted.
# The rows are locked in key order, so two batches never wait on each other
# in a cycle.
_TAKE_TOKENS = (
    "WITH w AS (SELECT * FROM unnest(%(keys)s::text[], %(wants)s::int[], %(rates)s::float8[], "
    " %(bursts)s::float8[]) AS w(k, n, r, b)), "
    "current AS (SELECT s.key, w.n, least(w.b, s.tokens + w.r * greatest(0, "
    " extract(epoch FROM %(now)s - s.refreshed_at)::float8)) AS avail "
    " FROM send_buckets s JOIN w ON w.k = s.key WHERE s.workspace_id = %(ws)s "
    " ORDER BY s.key FOR UPDATE OF s), "
    "granted AS (SELECT key, avail, least(n, floor(avail))::int AS taken FROM current) "
    "UPDATE send_buckets s SET tokens = g.avail - g.taken, refreshed_at = %(now)s FROM granted g "
    "WHERE s.workspace_id = %(ws)s AND s.key = g.key RETURNING g.key, g.taken"
)
_TOKENS_LEFT = (
    "SELECT least(%(burst)s, tokens + %(rate)s * greatest(0, "
    " extract(epoch FROM %(now)s - refreshed_at)::float8)) AS avail "
    "FROM send_buckets WHERE workspace_id = %(ws)s AND key = %(key)s"
)
_DEFER = (
    "UPDATE deliveries d SET due_at = w.due, reason = w.reason, lease_until = NULL, "
    " attempts = greatest(d.attempts - 1, 0), updated_at = %(now)s "
    "FROM unnest(%(ids)s::uuid[], %(dues)s::timestamptz[], %(reasons)s::text[]) AS w(id, due, reason) "
    "WHERE d.workspace_id = %(ws)s AND d.id = w.id"
)


@dataclass(frozen=True)
class Want:
    """Tokens wanted from a bucket that refills at `rate` a second up to `burst`."""

    key: str
    count: int
    rate: float
    burst: float


async def take_tokens(uow: UnitOfWork, wants: list[Want]) -> dict[str, int]:
    """Take what each bucket can give of what is wanted; how many each gave."""
    keys = [w.key for w in wants]
    bursts = [w.burst for w in wants]
    now = uow.clock.now()
    [_, rows] = await uow.pipeline(
        Statement(_FILL_BUCKETS, {"ws": uow.workspace_id, "keys": keys, "bursts": bursts,
                                  "now": now}),
        Statement(_TAKE_TOKENS, {"ws": uow.workspace_id, "keys": keys, "bursts": bursts,
                                 "wants": [w.count for w in wants],
                                 "rates": [w.rate for w in wants], "now": now}),
    )  # fmt: skip
    return {row.key: int(row.taken) for row in rows}


async def tokens_left(uow: UnitOfWork, key: str, *, rate: float, burst: float) -> float:
    """What the bucket holds now, without taking any (a full one if it was never used)."""
    rows = await uow.fetch(_TOKENS_LEFT, {"ws": uow.workspace_id, "key": key, "rate": rate,
                                          "burst": burst, "now": uow.clock.now()})  # fmt: skip
    return float(rows[0].avail) if rows else burst


async def defer(uow: UnitOfWork, waits: dict[UUID, tuple[datetime, str]]) -> None:
    """Put claimed deliveries back to wait until a moment, with why; not counted as attempts."""
    if not waits:
        return
    ids = list(waits)
    await uow.pipeline(Statement(_DEFER, {
        "ws": uow.workspace_id, "ids": ids, "dues": [waits[i][0] for i in ids],
        "reasons": [waits[i][1] for i in ids], "now": uow.clock.now(),
    }))  # fmt: skip


_WAKE = (
    "UPDATE campaigns SET next_wake_at = %(wake)s WHERE workspace_id = %(ws)s AND id = %(c)s "
    " AND (journey_id IS NULL OR next_wake_at IS NULL OR next_wake_at <= %(now)s "
    "  OR next_wake_at > %(wake)s) RETURNING id"
)


async def take_wake(uow: UnitOfWork, campaign_id: UUID, wake: datetime) -> bool:
    """Whether to queue a delayed batch job for `wake`: always for a campaign; for a journey's
    step only when no job is set to wake it by then (the timer queues many short jobs, and
    each would otherwise leave a delayed one behind)."""
    rows = await uow.fetch(_WAKE, {"ws": uow.workspace_id, "c": campaign_id, "wake": wake,
                                   "now": uow.clock.now()})  # fmt: skip
    return bool(rows)


# A journey's send steps: each is a campaign with no segment, whose deliveries are
# added as enrollments reach the step (`delivery.journeys.sends`).


@dataclass(frozen=True)
class StepCampaign:
    """A send step's campaign, as a journey's version first opens it."""

    journey_id: UUID
    version: int
    step_id: str
    name: str
    status: str
    template_id: UUID
    template_version: int
    purpose: str
    from_email: str
    from_name: str | None
    reply_to: str | None
    domain_id: UUID


async def open_step_campaign(uow: UnitOfWork, step: StepCampaign) -> None:
    """Make the step's campaign unless this version's step has one already."""
    now = uow.clock.now()
    await uow.fetch(
        "INSERT INTO campaigns (workspace_id, id, name, status, template_id, "
        " template_version, purpose, from_email, from_name, reply_to, domain_id, started_at, "
        " journey_id, journey_version, journey_step, created_at, updated_at) "
        "VALUES (%(ws)s, %(id)s, %(name)s, %(status)s, %(template)s, %(tv)s, %(purpose)s, "
        " %(from)s, %(from_name)s, %(reply_to)s, %(domain)s, %(now)s, %(journey)s, "
        " %(version)s, %(step)s, %(now)s, %(now)s) "
        "ON CONFLICT (workspace_id, journey_id, journey_version, journey_step) "
        " WHERE journey_id IS NOT NULL DO NOTHING RETURNING id",
        {"ws": uow.workspace_id, "id": new_id(), "name": step.name, "status": step.status,
         "template": step.template_id, "tv": step.template_version, "purpose": step.purpose,
         "from": step.from_email, "from_name": step.from_name, "reply_to": step.reply_to,
         "domain": step.domain_id, "now": now, "journey": step.journey_id,
         "version": step.version, "step": step.step_id},
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


_QUEUE_STEP_DELIVERIES = (
    "INSERT INTO deliveries (workspace_id, id, campaign_id, profile_id, enrollment_id, event, "
    " status, due_at, updated_at) "
    "SELECT %(ws)s, gen_random_uuid(), q.campaign, q.profile, q.enrollment, q.event, 'QUEUED', "
    " %(now)s, %(now)s FROM jsonb_to_recordset(%(rows)s::jsonb) AS q(campaign uuid, "
    " profile uuid, enrollment uuid, event jsonb) ON CONFLICT DO NOTHING"
)


async def queue_step_deliveries(uow: UnitOfWork, rows: str) -> None:
    """A delivery per row of `rows` (JSON: campaign, profile, enrollment, event), at most one
    per entry into the step."""
    await uow.fetch(
        _QUEUE_STEP_DELIVERIES, {"ws": uow.workspace_id, "now": uow.clock.now(), "rows": rows}
    )


async def set_step_campaigns(uow: UnitOfWork, journey_id: UUID, status: str) -> list[UUID]:
    """Move the journey's sending or paused step campaigns to `status`, except those the
    reputation guard paused (they have a `paused_reason`); the ids moved."""
    c = campaigns
    rows = await uow.execute(
        update(c).where(c.c.workspace_id == uow.workspace_id, c.c.journey_id == journey_id,
                        c.c.status.in_(("SENDING", "PAUSED")), c.c.paused_reason.is_(None))
        .values(status=status, updated_at=uow.clock.now()).returning(c.c.id)
    )  # fmt: skip
    return [row.id for row in rows]


async def cancel_step_campaigns(uow: UnitOfWork, journey_id: UUID, reason: str) -> None:
    """Cancel the journey's step campaigns; what they had not sent is skipped with `reason`."""
    c, d, now = campaigns, deliveries, uow.clock.now()
    ids = [r.id for r in await uow.execute(
        update(c).where(c.c.workspace_id == uow.workspace_id, c.c.journey_id == journey_id)
        .values(status="CANCELLED", finished_at=now, updated_at=now).returning(c.c.id)
    )]  # fmt: skip
    if ids:
        await uow.execute(
            update(d).where(d.c.workspace_id == uow.workspace_id, d.c.campaign_id.in_(ids),
                            d.c.status.in_(("QUEUED", "DEFERRED")))
            .values(status="SKIPPED", reason=reason, updated_at=now)
        )  # fmt: skip


# A message of an enrollment that left (a purchase, an exit step) and that no worker
# holds is not sent: a reminder held by quiet hours stays unsent.
_SKIP_OF_ENROLLMENTS = (
    "UPDATE deliveries d SET status = 'SKIPPED', reason = 'left the journey: ' || x.reason, "
    " updated_at = %(now)s "
    "FROM jsonb_to_recordset(%(rows)s::jsonb) AS x(id uuid, reason text) "
    "WHERE d.workspace_id = %(ws)s AND d.enrollment_id = x.id "
    " AND d.status IN ('QUEUED', 'DEFERRED') AND (d.lease_until IS NULL OR d.lease_until < %(now)s) "
    "RETURNING 1"
)
_SKIP_OF_JOURNEYS = (
    "UPDATE deliveries d SET status = 'SKIPPED', reason = 'left the journey: ' || x.reason, "
    " updated_at = %(now)s "
    "FROM jsonb_to_recordset(%(rows)s::jsonb) AS x(journey uuid, profile uuid, reason text) "
    "JOIN campaigns c ON c.workspace_id = %(ws)s AND c.journey_id = x.journey "
    "WHERE d.workspace_id = %(ws)s AND d.campaign_id = c.id AND d.profile_id = x.profile "
    " AND d.status IN ('QUEUED', 'DEFERRED') AND (d.lease_until IS NULL OR d.lease_until < %(now)s) "
    "RETURNING 1"
)


async def skip_unsent_of_enrollments(uow: UnitOfWork, rows: str) -> None:
    """Skip the unheld, unsent messages of these enrollments (JSON rows: id, reason)."""
    await uow.fetch(
        _SKIP_OF_ENROLLMENTS, {"ws": uow.workspace_id, "now": uow.clock.now(), "rows": rows}
    )


async def skip_unsent_of_journeys(uow: UnitOfWork, rows: str) -> None:
    """Skip the unheld, unsent messages of these journeys to these profiles (JSON rows:
    journey, profile, reason)."""
    await uow.fetch(
        _SKIP_OF_JOURNEYS, {"ws": uow.workspace_id, "now": uow.clock.now(), "rows": rows}
    )
