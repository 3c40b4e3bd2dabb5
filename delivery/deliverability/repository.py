"""SQL of deliverability: storing and claiming reports, finding their deliveries, counting."""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import orjson

from delivery.deliverability import message_parts
from domain.advisory import xact_lock
from domain.sqlparams import array_literal
from domain.uow import Statement, UnitOfWork

PROCESS_ACTOR = "process_inbound"
QUEUE = "deliverability"


async def workspaces_for_domain(uow: UnitOfWork, domain: str) -> list[UUID]:
    """The workspaces that send from `domain` (an owner function: no workspace is selected)."""
    rows = await uow.fetch(
        "SELECT workspace_id FROM cdp_inbound_workspaces(%(d)s)", {"d": domain.lower()}
    )
    return [row.workspace_id for row in rows]


async def holds_delivery(uow: UnitOfWork, delivery_id: UUID) -> bool:
    rows = await uow.fetch(
        "SELECT 1 AS found FROM deliveries WHERE workspace_id = %(ws)s AND id = %(id)s",
        {"ws": uow.workspace_id, "id": delivery_id},
    )
    return bool(rows)


@dataclass(frozen=True)
class NewReport:
    id: UUID
    source: str
    received_at: datetime
    size: int
    mail_from: str | None = None
    rcpt_to: tuple[str, ...] = ()
    raw: bytes | None = None
    external_id: str | None = None
    # A relay's webhook has classified its event already.
    kind: str | None = None
    bounce_class: str | None = None
    status_code: str | None = None
    recipients: tuple[str, ...] | None = None
    message_id: str | None = None
    diagnostic: str | None = None


# The reports, then the workspace's processing job unless one is queued
# already (the same request-row pattern as the segments' upkeep: the storing
# transaction holds `_STORING` shared until it commits, and the job takes its
# request under it held exclusively before it claims, so it sees these
# reports or a new job is queued for them; `domain.advisory`). Statements of
# one round trip: the last answers a row only when it queued a job, which is
# what wakes the outbox relay after the commit. A webhook event seen before
# is not stored again. The raw bytes travel as an array beside the rest,
# matched by position.
_STORING = "inbound-storing:{}"
_STORE = (
    "INSERT INTO inbound_messages (workspace_id, id, source, external_id, received_at,"
    " mail_from, rcpt_to, size, raw, kind, bounce_class, status_code, recipients, message_id,"
    " diagnostic)"
    " SELECT %(ws)s, r.id, r.source, r.external_id, r.received_at, r.mail_from, r.rcpt_to,"
    " r.size, b.raw, r.kind, r.bounce_class, r.status_code, r.recipients, r.message_id,"
    " r.diagnostic"
    " FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(id uuid, source text,"
    " external_id text, received_at timestamptz, mail_from text, rcpt_to text[], size int,"
    " kind text, bounce_class text, status_code text, recipients text[], message_id text,"
    " diagnostic text, n bigint)"
    " JOIN unnest(%(raws)s::bytea[]) WITH ORDINALITY AS b(raw, n) ON b.n = r.n"
    " ON CONFLICT (workspace_id, source, external_id) WHERE external_id IS NOT NULL"
    " DO NOTHING RETURNING 1"
)
_QUEUE_JOB = (
    "WITH requested AS (INSERT INTO inbound_requests (workspace_id) SELECT %(ws)s"
    " ON CONFLICT DO NOTHING RETURNING workspace_id) "
    "INSERT INTO outbox (id, actor_name, queue_name, args, kwargs, options)"
    " SELECT %(job)s, %(actor)s, %(queue)s, jsonb_build_array(%(ws)s::text), '{}', '{}'"
    " FROM requested RETURNING id"
)


def store(workspace_id: UUID, reports: Sequence[NewReport], *, job_id: UUID) -> list[Statement]:
    """Keep reports for processing (a row each one stored), and queue the workspace's job if
    none is queued."""
    rows = [
        {**{k: v for k, v in dataclasses.asdict(r).items() if k != "raw"}, "n": n}
        for n, r in enumerate(reports, start=1)
    ]
    stored = {"ws": workspace_id, "rows": orjson.dumps(rows, default=str).decode(),
              "raws": [r.raw for r in reports]}  # fmt: skip
    job = {"ws": workspace_id, "job": job_id, "actor": PROCESS_ACTOR, "queue": QUEUE}
    return [xact_lock(_STORING.format(workspace_id), shared=True),
            Statement(_STORE, stored, prepare=False),
            Statement(_QUEUE_JOB, job, writes_jobs=True)]  # fmt: skip


async def take_request(uow: UnitOfWork) -> None:
    """Let the next report queue a new job, once those being stored have committed."""
    await uow.pipeline(xact_lock(_STORING.format(uow.workspace_id), shared=False))
    await uow.fetch(
        "DELETE FROM inbound_requests WHERE workspace_id = %(ws)s RETURNING 1",
        {"ws": uow.workspace_id},
    )


@dataclass(frozen=True)
class Pending:
    id: UUID
    source: str
    received_at: datetime
    mail_from: str | None
    rcpt_to: list[str]
    raw: bytes | None
    kind: str | None
    bounce_class: str | None
    status_code: str | None
    recipients: list[str] | None
    message_id: str | None
    diagnostic: str | None


# Only the head of a raw message is read back: the classifier reads no further,
# and a batch of huge messages must not fill memory.
HEAD_BYTES = message_parts.MAX_BYTES
_PENDING_COLUMNS = (
    "SELECT id, source, received_at, mail_from, rcpt_to, substring(raw from 1 for %(head)s)"
    " AS raw, kind, bounce_class, status_code, recipients, message_id, diagnostic"
    " FROM inbound_messages"
)


async def claim(uow: UnitOfWork, limit: int) -> list[Pending]:
    """The oldest reports not yet processed, locked; a concurrent claim takes others."""
    rows = await uow.fetch(
        _PENDING_COLUMNS + " WHERE workspace_id = %(ws)s AND state = 'RECEIVED'"
        " ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
        {"ws": uow.workspace_id, "limit": limit, "head": HEAD_BYTES},
    )
    return [Pending(**row._asdict()) for row in rows]


async def claim_one(uow: UnitOfWork, report_id: UUID) -> list[Pending]:
    rows = await uow.fetch(
        _PENDING_COLUMNS + " WHERE workspace_id = %(ws)s AND id = %(id)s AND state = 'RECEIVED'"
        " FOR UPDATE SKIP LOCKED",
        {"ws": uow.workspace_id, "id": report_id, "head": HEAD_BYTES},
    )
    return [Pending(**row._asdict()) for row in rows]


async def mark_failed(uow: UnitOfWork, report_id: UUID, error: str, at: datetime) -> None:
    await uow.fetch(
        "UPDATE inbound_messages SET state = 'FAILED', error = %(error)s, processed_at = %(at)s"
        " WHERE workspace_id = %(ws)s AND id = %(id)s RETURNING 1",
        {"ws": uow.workspace_id, "id": report_id, "error": error, "at": at},
    )


@dataclass(frozen=True)
class Done:
    id: UUID
    state: str
    kind: str | None
    bounce_class: str | None
    status_code: str | None
    recipients: list[str]
    message_id: str | None
    delivery_id: UUID | None
    profile_id: UUID | None
    outcome: str
    error: str | None = None


async def mark_done(uow: UnitOfWork, done: Sequence[Done], at: datetime) -> None:
    if not done:
        return
    rows = orjson.dumps([dataclasses.asdict(d) for d in done], default=str).decode()
    await uow.fetch(
        "UPDATE inbound_messages m SET state = r.state, kind = r.kind,"
        " bounce_class = r.bounce_class, status_code = r.status_code, recipients = r.recipients,"
        " message_id = r.message_id, delivery_id = r.delivery_id, profile_id = r.profile_id,"
        " outcome = r.outcome, error = r.error, processed_at = %(at)s"
        " FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(id uuid, state text, kind text,"
        " bounce_class text, status_code text, recipients text[], message_id text,"
        " delivery_id uuid, profile_id uuid, outcome text, error text)"
        " WHERE m.workspace_id = %(ws)s AND m.id = r.id RETURNING 1",
        {"ws": uow.workspace_id, "at": at, "rows": rows},
    )


@dataclass(frozen=True)
class DeliveryRow:
    id: UUID
    campaign_id: UUID
    profile_id: UUID  # the survivor, when the recipient was merged since
    status: str
    message_id: str | None
    purpose: str
    campaign_status: str


async def deliveries(uow: UnitOfWork, ids: Sequence[UUID]) -> dict[UUID, DeliveryRow]:
    if not ids:
        return {}
    rows = await uow.fetch(
        "SELECT d.id, d.campaign_id,"
        " CASE WHEN p.merged_into IS NULL THEN d.profile_id ELSE p.merged_into END AS profile_id,"
        " d.status, d.message_id, c.purpose, c.status AS campaign_status"
        # A primary-key probe per id, as `tracking.repository.deliveries` reads them.
        " FROM unnest(%(ids)s::uuid[]) AS u(id) CROSS JOIN LATERAL ("
        " SELECT * FROM deliveries d WHERE d.workspace_id = %(ws)s AND d.id = u.id OFFSET 0) AS d"
        " JOIN campaigns c ON c.workspace_id = d.workspace_id AND c.id = d.campaign_id"
        " LEFT JOIN profiles p ON p.workspace_id = d.workspace_id AND p.id = d.profile_id",
        {"ws": uow.workspace_id, "ids": array_literal(sorted(set(ids)))},
    )
    return {row.id: DeliveryRow(**row._asdict()) for row in rows}


@dataclass(frozen=True)
class DeliveryChange:
    id: UUID
    status: str
    reason: str
    due_at: datetime | None  # a soft bounce of a campaign still sending is tried again then


async def update_deliveries(
    uow: UnitOfWork, changes: Sequence[DeliveryChange], at: datetime
) -> None:
    if not changes:
        return
    await uow.fetch(
        "UPDATE deliveries d SET status = r.status, reason = r.reason,"
        " due_at = coalesce(r.due_at, d.due_at), updated_at = %(at)s"
        " FROM unnest(%(ids)s::uuid[], %(statuses)s::text[], %(reasons)s::text[],"
        " %(due)s::timestamptz[]) AS r(id, status, reason, due_at)"
        " WHERE d.workspace_id = %(ws)s AND d.id = r.id RETURNING 1",
        {
            "ws": uow.workspace_id, "at": at, "ids": [c.id for c in changes],
            "statuses": [c.status for c in changes], "reasons": [c.reason for c in changes],
            "due": [c.due_at for c in changes],
        },
    )  # fmt: skip


async def soft_bounce_days(
    uow: UnitOfWork, bounces: Sequence[tuple[bytes, date]], *, window_days: int
) -> list[int]:
    """Record each (digest, day) soft bounce; for each, the days its digest bounced in the
    `window_days` days that end on its day. Two statements for the lot."""
    if not bounces:
        return []
    params = {
        "ws": uow.workspace_id, "digests": [d for d, _ in bounces],
        "days": [day for _, day in bounces], "back": window_days - 1,
    }  # fmt: skip
    await uow.fetch(
        "INSERT INTO soft_bounces (workspace_id, digest, day)"
        " SELECT DISTINCT %(ws)s, t.d, t.day FROM unnest(%(digests)s::bytea[], %(days)s::date[])"
        " AS t(d, day) ON CONFLICT DO NOTHING RETURNING 1",
        params,
    )
    rows = await uow.fetch(
        "SELECT t.n, count(b.day) AS days"
        " FROM unnest(%(digests)s::bytea[], %(days)s::date[]) WITH ORDINALITY AS t(d, day, n)"
        " LEFT JOIN soft_bounces b ON b.workspace_id = %(ws)s AND b.digest = t.d"
        " AND b.day BETWEEN t.day - %(back)s AND t.day GROUP BY t.n ORDER BY t.n",
        params,
    )
    return [int(row.days) for row in rows]


async def purge_soft_bounces(uow: UnitOfWork, before: date) -> None:
    await uow.fetch(
        "DELETE FROM soft_bounces WHERE workspace_id = %(ws)s AND day < %(before)s RETURNING 1",
        {"ws": uow.workspace_id, "before": before},
    )


@dataclass(frozen=True)
class CampaignCounts:
    sent: int
    bounced: int
    complained: int


async def campaign_counts(
    uow: UnitOfWork, campaign_ids: Sequence[UUID]
) -> dict[UUID, CampaignCounts]:
    if not campaign_ids:
        return {}
    rows = await uow.fetch(
        "SELECT d.campaign_id, count(*) FILTER (WHERE d.sent_at IS NOT NULL) AS sent,"
        # A message the relay refused was never sent: it counts in neither.
        " count(*) FILTER (WHERE d.status = 'BOUNCED' AND d.sent_at IS NOT NULL) AS bounced,"
        " count(*) FILTER (WHERE d.status = 'COMPLAINED') AS complained"
        " FROM deliveries d WHERE d.workspace_id = %(ws)s AND d.campaign_id = ANY(%(ids)s::uuid[])"
        " GROUP BY d.campaign_id",
        {"ws": uow.workspace_id, "ids": list(campaign_ids)},
    )
    return {r.campaign_id: CampaignCounts(int(r.sent), int(r.bounced), int(r.complained))
            for r in rows}  # fmt: skip


@dataclass(frozen=True)
class DomainCounts:
    sent: int
    hard_bounced: int
    soft_bounced: int
    complained: int


async def domain_counts(
    uow: UnitOfWork, domain_ids: Sequence[UUID], *, since: datetime
) -> dict[UUID, DomainCounts]:
    """Each sending domain's messages sent since `since`, and what became of them.

    Only the campaigns that may have sent since then are read: those not
    finished before it.
    """
    if not domain_ids:
        return {}
    rows = await uow.fetch(
        "SELECT c.domain_id, count(*) AS sent,"
        " count(*) FILTER (WHERE d.status = 'BOUNCED') AS hard_bounced,"
        " count(*) FILTER (WHERE d.status = 'DEFERRED') AS soft_bounced,"
        " count(*) FILTER (WHERE d.status = 'COMPLAINED') AS complained"
        " FROM campaigns c JOIN deliveries d ON d.workspace_id = c.workspace_id"
        " AND d.campaign_id = c.id"
        " WHERE c.workspace_id = %(ws)s AND c.domain_id = ANY(%(ids)s::uuid[])"
        " AND (c.finished_at IS NULL OR c.finished_at >= %(since)s)"
        " AND d.sent_at >= %(since)s GROUP BY c.domain_id",
        {"ws": uow.workspace_id, "ids": list(domain_ids), "since": since},
    )
    return {
        r.domain_id: DomainCounts(int(r.sent), int(r.hard_bounced), int(r.soft_bounced),
                                  int(r.complained))
        for r in rows
    }  # fmt: skip


async def domains_to_check(uow: UnitOfWork, before: datetime) -> list[tuple[UUID, UUID]]:
    """(workspace, sending domain) of every domain last checked before `before`, any workspace."""
    rows = await uow.fetch(
        "SELECT workspace_id, domain_id FROM cdp_domains_to_check(%(before)s)", {"before": before}
    )
    return [(row.workspace_id, row.domain_id) for row in rows]


async def campaigns_sending(uow: UnitOfWork) -> list[tuple[UUID, UUID]]:
    """(workspace, campaign) of every campaign with messages still to send, any workspace."""
    rows = await uow.fetch("SELECT workspace_id, campaign_id FROM cdp_sending_work()", {})
    return [(row.workspace_id, row.campaign_id) for row in rows]


async def sending_workspaces(uow: UnitOfWork) -> list[UUID]:
    rows = await uow.fetch("SELECT workspace_id FROM cdp_sending_workspaces()", {})
    return [row.workspace_id for row in rows]


async def waiting_since(uow: UnitOfWork, before: datetime) -> bool:
    """Whether a report received before `before` is still waiting to be processed."""
    rows = await uow.fetch(
        "SELECT 1 AS found FROM inbound_messages WHERE workspace_id = %(ws)s"
        " AND state = 'RECEIVED' AND received_at < %(before)s LIMIT 1",
        {"ws": uow.workspace_id, "before": before},
    )
    return bool(rows)


async def forget_raw(uow: UnitOfWork, before: datetime) -> int:
    """Empty the raw bytes and the addresses of the reports received before `before`; what
    they were and what was done stay."""
    rows = await uow.fetch(
        "UPDATE inbound_messages SET raw = NULL, mail_from = NULL, recipients = NULL,"
        " diagnostic = NULL WHERE workspace_id = %(ws)s AND received_at < %(before)s"
        " AND (raw IS NOT NULL OR recipients IS NOT NULL) AND state <> 'RECEIVED' RETURNING 1",
        {"ws": uow.workspace_id, "before": before},
    )
    return len(rows)
