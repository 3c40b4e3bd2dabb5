"""The tracking tables' SQL: hits in and out, engagement per message, conversions, counters."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from delivery.tracking.tables import COUNTERS
from domain.ids import new_id
from domain.outbox import Job
from domain.sqlparams import array_literal
from domain.uow import Statement, UnitOfWork

if TYPE_CHECKING:
    from delivery.tracking.capture import Captured

PROCESS_ACTOR = "tracking_process"
# Opens, clicks and sending outcomes are feedback on sent mail, as bounces and
# complaints are: they share that queue, and no worker polls one more queue.
QUEUE = "deliverability"
ALL_COUNTERS = (*COUNTERS, "revenue")


# After a CTE `stored` that wrote something: the workspace's request and its
# processing job, unless one is queued already.
_AND_REQUEST = (
    "requested AS (INSERT INTO tracking_requests (workspace_id) SELECT %(ws)s "
    " WHERE EXISTS (SELECT 1 FROM stored) ON CONFLICT DO NOTHING RETURNING workspace_id) "
    "INSERT INTO outbox (id, actor_name, queue_name, args, kwargs, options) "
    "SELECT %(job)s, %(actor)s, %(queue)s, jsonb_build_array(%(ws)s::text), '{}', '{}' "
    "FROM requested RETURNING id"
)
# The hits of one flush and the job: one statement, sent with the COMMIT, so a
# flush costs a single round trip.
_QUEUE_HITS = (
    "WITH stored AS (INSERT INTO tracking_hits (workspace_id, id, kind, delivery_id, link, url, "  # noqa: S608 - fixed text
    " at, ip, user_agent) "
    " SELECT %(ws)s, * FROM unnest(%(id)s::uuid[], %(kind)s::text[], %(delivery)s::uuid[], "
    "  %(link)s::int[], %(url)s::text[], %(at)s::timestamptz[], %(ip)s::text[], "
    "  %(ua)s::text[]) ON CONFLICT DO NOTHING RETURNING 1), " + _AND_REQUEST
)


def queue_hits(uow: UnitOfWork, hits: Sequence["Captured"]) -> Statement:
    return Statement(_QUEUE_HITS, {
        "ws": uow.workspace_id, "id": [h.id for h in hits], "kind": [h.kind for h in hits],
        "delivery": [h.delivery_id for h in hits], "link": [h.link for h in hits],
        "url": [h.url for h in hits], "at": [h.at for h in hits], "ip": [h.ip for h in hits],
        "ua": [h.user_agent for h in hits], "job": new_id(), "actor": PROCESS_ACTOR,
        "queue": QUEUE,
    }, writes_jobs=True)  # fmt: skip


async def request_processing(uow: UnitOfWork, delay: timedelta | None = None) -> None:
    """Queue the workspace's processing job, unless one is queued already."""
    taken = await uow.fetch(
        "INSERT INTO tracking_requests (workspace_id) VALUES (%(ws)s) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        {"ws": uow.workspace_id},
    )
    if taken:
        delay_ms = int(delay.total_seconds() * 1000) if delay else None
        await uow.enqueue(Job(PROCESS_ACTOR, (str(uow.workspace_id),), queue_name=QUEUE,
                              delay_ms=delay_ms))  # fmt: skip


async def take_request(uow: UnitOfWork) -> None:
    await uow.fetch(
        "DELETE FROM tracking_requests WHERE workspace_id = %(ws)s", {"ws": uow.workspace_id}
    )


async def workspaces_with_work(uow: UnitOfWork) -> list[UUID]:
    rows = await uow.fetch("SELECT workspace_id FROM cdp_tracking_workspaces()")
    return [row.workspace_id for row in rows]


@dataclass(frozen=True)
class PendingHit:
    id: UUID
    kind: str
    delivery_id: UUID
    link: int
    url: str | None
    at: datetime
    ip: str | None
    user_agent: str | None


async def lock_workspace(uow: UnitOfWork) -> None:
    """One tracking transaction at a time per workspace: a message's first open must be
    counted once, and a hit judged with the hits before it."""
    await uow.fetch("SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0))",
                    {"key": f"tracking:{uow.workspace_id}"})  # fmt: skip


async def claim_hits(uow: UnitOfWork, limit: int, *, before: datetime) -> list[PendingHit]:
    """The oldest unprocessed hits that arrived before `before`."""
    rows = await uow.fetch(
        "SELECT id, kind, delivery_id, link, url, at, ip, user_agent FROM tracking_hits "
        "WHERE workspace_id = %(ws)s AND processed_at IS NULL AND at < %(before)s "
        "ORDER BY at LIMIT %(limit)s FOR UPDATE",
        {"ws": uow.workspace_id, "limit": limit, "before": before},
    )
    return [PendingHit(*row) for row in rows]


async def unsettled(uow: UnitOfWork) -> datetime | None:
    """When the workspace's oldest unprocessed hit arrived, if any."""
    rows = await uow.fetch(
        "SELECT min(at) AS at FROM tracking_hits WHERE workspace_id = %(ws)s "
        "AND processed_at IS NULL",
        {"ws": uow.workspace_id},
    )
    return rows[0].at if rows else None


def skip_hit(uow: UnitOfWork, at: datetime) -> Statement:
    """Set aside the oldest pending hit, which failed on its own: kept, marked failed."""
    return Statement(
        "UPDATE tracking_hits SET processed_at = %(at)s, reason = 'failed' "
        "WHERE workspace_id = %(ws)s AND id = (SELECT id FROM tracking_hits "
        " WHERE workspace_id = %(ws)s AND processed_at IS NULL ORDER BY at LIMIT 1)",
        {"ws": uow.workspace_id, "at": at},
    )


@dataclass(frozen=True)
class Sent:
    """What a hit's delivery was: whose, of which campaign and variant, and when it left."""

    delivery_id: UUID
    profile_id: UUID
    campaign_id: UUID
    campaign_name: str
    variant: str
    journey_id: UUID | None
    journey_step: str | None
    sent_at: datetime | None
    reason: str | None


_COLUMNS = (
    "SELECT d.id, d.profile_id, d.campaign_id, c.name, coalesce(d.variant, ''), "
    " c.journey_id, c.journey_step, d.sent_at, d.reason "
)
_SENT = (
    f"{_COLUMNS}FROM deliveries d JOIN campaigns c ON c.workspace_id = d.workspace_id"
    " AND c.id = d.campaign_id"
)
# A primary-key probe per id: with `d.id = ANY(ids)`, a generic plan read every
# delivery of the campaign through its recipients' index and filtered them by
# the array, so each batch of a campaign's outcomes cost more than the one
# before (bench/README.md, "Sending").
_SENT_BY_ID = (
    f"{_COLUMNS}FROM unnest(%(ids)s::uuid[]) AS u(id) CROSS JOIN LATERAL ("  # noqa: S608 - constant SQL
    " SELECT * FROM deliveries d WHERE d.workspace_id = %(ws)s AND d.id = u.id OFFSET 0) AS d "
    "JOIN campaigns c ON c.workspace_id = d.workspace_id AND c.id = d.campaign_id"
)


async def deliveries(uow: UnitOfWork, ids: Sequence[UUID]) -> dict[UUID, Sent]:
    rows = await uow.fetch(
        _SENT_BY_ID,
        {"ws": uow.workspace_id, "ids": array_literal(sorted(set(ids)))},
    )
    return {row[0]: Sent(*row) for row in rows}


async def recent_hits(
    uow: UnitOfWork, delivery_ids: Sequence[UUID], since: datetime
) -> list[PendingHit]:
    """The hits of these deliveries processed already, from `since` on."""
    rows = await uow.fetch(
        "SELECT id, kind, delivery_id, link, url, at, ip, user_agent FROM tracking_hits "
        "WHERE workspace_id = %(ws)s AND delivery_id = ANY(%(ids)s::uuid[]) "
        " AND at >= %(since)s AND processed_at IS NOT NULL",
        {"ws": uow.workspace_id, "ids": sorted(set(delivery_ids)), "since": since},
    )
    return [PendingHit(*row) for row in rows]


@dataclass(frozen=True)
class Classified:
    id: UUID
    profile_id: UUID | None
    machine: bool
    reason: str | None
    proxy: str | None


def mark_hits(uow: UnitOfWork, done: Sequence[Classified], at: datetime) -> Statement:
    return Statement(
        "UPDATE tracking_hits h SET profile_id = v.pid, machine = v.machine, reason = v.reason, "
        " proxy = v.proxy, processed_at = %(at)s "
        "FROM unnest(%(id)s::uuid[], %(pid)s::uuid[], %(machine)s::bool[], %(reason)s::text[], "
        " %(proxy)s::text[]) AS v(id, pid, machine, reason, proxy) "
        "WHERE h.workspace_id = %(ws)s AND h.id = v.id",
        {
            "ws": uow.workspace_id, "at": at, "id": [c.id for c in done],
            "pid": [c.profile_id for c in done], "machine": [c.machine for c in done],
            "reason": [c.reason for c in done], "proxy": [c.proxy for c in done],
        },
    )  # fmt: skip


def delete_hits(uow: UnitOfWork, ids: Sequence[UUID]) -> Statement:
    return Statement(
        "DELETE FROM tracking_hits WHERE workspace_id = %(ws)s AND id = ANY(%(ids)s::uuid[])",
        {"ws": uow.workspace_id, "ids": list(ids)},
    )


@dataclass
class Engagement:
    """A message's opens and clicks so far (a new one has none)."""

    delivery_id: UUID
    first_open_at: datetime | None = None
    first_click_at: datetime | None = None
    last_click_at: datetime | None = None
    opens: int = 0
    clicks: int = 0
    machine_opens: int = 0
    machine_clicks: int = 0


async def engagement(uow: UnitOfWork, delivery_ids: Sequence[UUID]) -> dict[UUID, Engagement]:
    """The engagement rows of these deliveries, locked for this transaction's update."""
    rows = await uow.fetch(
        "SELECT delivery_id, first_open_at, first_click_at, last_click_at, opens, clicks, "
        " machine_opens, machine_clicks FROM delivery_engagement "
        "WHERE workspace_id = %(ws)s AND delivery_id = ANY(%(ids)s::uuid[]) "
        "ORDER BY delivery_id FOR UPDATE",
        {"ws": uow.workspace_id, "ids": sorted(set(delivery_ids))},
    )
    return {row[0]: Engagement(*row) for row in rows}


def save_engagement(
    uow: UnitOfWork, rows: Sequence[Engagement], sent: Mapping[UUID, "Sent"]
) -> Statement:
    ordered = sorted(rows, key=lambda e: e.delivery_id)
    return Statement(
        "INSERT INTO delivery_engagement (workspace_id, delivery_id, campaign_id, variant, "
        " profile_id, first_open_at, first_click_at, last_click_at, opens, clicks, "
        " machine_opens, machine_clicks) "
        "SELECT %(ws)s, * FROM unnest(%(d)s::uuid[], %(c)s::uuid[], %(v)s::text[], "
        " %(p)s::uuid[], %(fo)s::timestamptz[], %(fc)s::timestamptz[], %(lc)s::timestamptz[], "
        " %(o)s::int[], %(k)s::int[], %(mo)s::int[], %(mk)s::int[]) "
        "ON CONFLICT (workspace_id, delivery_id) DO UPDATE SET "
        " first_open_at = excluded.first_open_at, first_click_at = excluded.first_click_at, "
        " last_click_at = excluded.last_click_at, opens = excluded.opens, "
        " clicks = excluded.clicks, machine_opens = excluded.machine_opens, "
        " machine_clicks = excluded.machine_clicks",
        {
            "ws": uow.workspace_id,
            "d": [e.delivery_id for e in ordered],
            "c": [sent[e.delivery_id].campaign_id for e in ordered],
            "v": [sent[e.delivery_id].variant for e in ordered],
            "p": [sent[e.delivery_id].profile_id for e in ordered],
            "fo": [e.first_open_at for e in ordered], "fc": [e.first_click_at for e in ordered],
            "lc": [e.last_click_at for e in ordered], "o": [e.opens for e in ordered],
            "k": [e.clicks for e in ordered], "mo": [e.machine_opens for e in ordered],
            "mk": [e.machine_clicks for e in ordered],
        },
    )  # fmt: skip


@dataclass(frozen=True)
class Delta:
    """Counter changes of one campaign and variant in one hour."""

    campaign_id: UUID
    variant: str
    bucket: datetime
    counts: Mapping[str, int | Decimal]


def add_deltas(uow: UnitOfWork, deltas: Sequence[Delta]) -> Statement:
    columns = ", ".join(ALL_COUNTERS)
    arrays = ", ".join(
        f"%({name})s::{'numeric' if name == 'revenue' else 'bigint'}[]" for name in ALL_COUNTERS
    )
    params: dict[str, Any] = {
        "ws": uow.workspace_id,
        "campaign": [d.campaign_id for d in deltas],
        "variant": [d.variant for d in deltas],
        "bucket": [d.bucket for d in deltas],
    }
    for name in ALL_COUNTERS:
        params[name] = [d.counts.get(name, 0) for d in deltas]
    return Statement(
        f"INSERT INTO message_stats_deltas (workspace_id, campaign_id, variant, bucket, {columns}) "  # noqa: S608 - fixed names
        f"SELECT %(ws)s, * FROM unnest(%(campaign)s::uuid[], %(variant)s::text[], "
        f" %(bucket)s::timestamptz[], {arrays})",
        params,
    )


async def roll_up(uow: UnitOfWork) -> int:
    """Fold the workspace's counter deltas into the hourly counters; how many deltas."""
    await lock_workspace(uow)
    sums = ", ".join(f"sum({name})" for name in ALL_COUNTERS)
    adds = ", ".join(f"{name} = message_stats.{name} + excluded.{name}" for name in ALL_COUNTERS)
    rows = await uow.fetch(
        "WITH moved AS (DELETE FROM message_stats_deltas WHERE workspace_id = %(ws)s "  # noqa: S608 - fixed names
        " RETURNING *), "
        "folded AS (INSERT INTO message_stats (workspace_id, campaign_id, variant, bucket, "
        f" {', '.join(ALL_COUNTERS)}) "
        f"SELECT m.workspace_id, m.campaign_id, m.variant, m.bucket, {sums} FROM moved m "
        " WHERE EXISTS (SELECT 1 FROM campaigns c WHERE c.workspace_id = m.workspace_id "
        "  AND c.id = m.campaign_id) "
        " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 "
        f"ON CONFLICT (workspace_id, campaign_id, variant, bucket) DO UPDATE SET {adds}) "
        "SELECT count(*) AS n FROM moved",
        {"ws": uow.workspace_id},
    )
    return int(rows[0].n)


@dataclass(frozen=True)
class MessageEvent:
    id: int
    delivery_id: UUID
    kind: str
    at: datetime


async def claim_message_events(uow: UnitOfWork, limit: int) -> list[MessageEvent]:
    rows = await uow.fetch(
        "DELETE FROM message_events WHERE workspace_id = %(ws)s AND id IN ("
        " SELECT id FROM message_events WHERE workspace_id = %(ws)s ORDER BY id "
        " LIMIT %(limit)s FOR UPDATE SKIP LOCKED) RETURNING id, delivery_id, kind, at",
        {"ws": uow.workspace_id, "limit": limit},
    )
    return sorted((MessageEvent(*row) for row in rows), key=lambda e: e.id)


# Each new `Order Completed` with a numeric revenue, attributed to the message
# whose link the profile (or a profile merged into it) last clicked, by a
# person, within the window before the order; `order_id` (else the message
# id) counts an order once. The message converts on its first order. Each
# order's event is a probe of its partition's key (OFFSET 0 keeps it one): a
# join read every event of the workspace when the statistics were stale.
ATTRIBUTE = """
WITH orders AS (
    SELECT DISTINCT ON (x.order_id) x.* FROM (
        SELECT coalesce(e.properties->>'order_id', 'message:' || e.message_id) AS order_id,
               e.profile_id, (e.properties->>'revenue')::numeric AS revenue, e.timestamp AS at
        FROM unnest(%(ids)s::uuid[], %(times)s::timestamptz[]) AS u(id, at)
        CROSS JOIN LATERAL (
            SELECT e.properties, e.message_id, e.profile_id, e.timestamp FROM events e
            WHERE e.workspace_id = %(ws)s AND e.id = u.id AND e.timestamp = u.at
              AND e.name = %(name)s AND jsonb_typeof(e.properties->'revenue') = 'number'
            OFFSET 0) e
    ) x ORDER BY x.order_id, x.at
),
attributed AS (
    INSERT INTO tracking_conversions (workspace_id, order_id, profile_id, delivery_id,
        campaign_id, variant, revenue, at)
    SELECT %(ws)s, o.order_id, o.profile_id, g.delivery_id, g.campaign_id, g.variant,
           o.revenue, o.at
    FROM orders o CROSS JOIN LATERAL (
        SELECT g.delivery_id, g.campaign_id, g.variant
        FROM profiles p
        JOIN tracking_hits h ON h.workspace_id = p.workspace_id AND h.profile_id = p.id
        JOIN delivery_engagement g ON g.workspace_id = h.workspace_id
             AND g.delivery_id = h.delivery_id
        WHERE p.workspace_id = %(ws)s AND (p.id = o.profile_id OR p.merged_into = o.profile_id)
          AND h.kind = 'click' AND h.machine = false
          AND h.at <= o.at AND h.at > o.at - %(window)s
        ORDER BY h.at DESC LIMIT 1) g
    ON CONFLICT DO NOTHING
    RETURNING delivery_id, campaign_id, variant, revenue, at
),
converted AS (
    UPDATE delivery_engagement g SET converted_at = a.at
    FROM (SELECT DISTINCT ON (delivery_id) delivery_id, at FROM attributed
          ORDER BY delivery_id, at) a
    WHERE g.workspace_id = %(ws)s AND g.delivery_id = a.delivery_id AND g.converted_at IS NULL
    RETURNING g.delivery_id, g.converted_at
)
INSERT INTO message_stats_deltas (workspace_id, campaign_id, variant, bucket, orders, revenue,
    converted)
SELECT %(ws)s, a.campaign_id, a.variant, date_trunc('hour', a.at, 'UTC'), count(*),
       sum(a.revenue), count(DISTINCT c.delivery_id)
FROM attributed a LEFT JOIN converted c ON c.delivery_id = a.delivery_id AND c.converted_at = a.at
GROUP BY 2, 3, 4
"""


def attribute(uow: UnitOfWork, ids: Sequence[UUID], times: Sequence[datetime], *,
              name: str, window: timedelta) -> Statement:  # fmt: skip
    return Statement(ATTRIBUTE, {"ws": uow.workspace_id, "ids": list(ids), "times": list(times),
                                 "name": name, "window": window})  # fmt: skip


# The orders among a transaction's new events, queued for the tracking job,
# which is queued too unless it is already.
_QUEUE_ORDERS = (
    "WITH stored AS (INSERT INTO tracking_orders (workspace_id, event_id, at) "  # noqa: S608 - fixed text
    " SELECT %(ws)s, u.id, u.at FROM unnest(%(ids)s::uuid[], %(times)s::timestamptz[]) AS u(id, at) "
    " ON CONFLICT DO NOTHING RETURNING 1), " + _AND_REQUEST
)


def queue_orders(workspace_id: UUID, ids: Sequence[str], times: Sequence[datetime]) -> Statement:
    return Statement(_QUEUE_ORDERS, {
        "ws": workspace_id, "ids": list(ids), "times": list(times), "job": new_id(),
        "actor": PROCESS_ACTOR, "queue": QUEUE,
    }, writes_jobs=True)  # fmt: skip


async def claim_orders(
    uow: UnitOfWork, limit: int, *, before: datetime
) -> list[tuple[UUID, datetime]]:
    """Queued orders placed before `before` and before every hit still unprocessed, so that
    each finds the clicks that came before it."""
    rows = await uow.fetch(
        "DELETE FROM tracking_orders WHERE workspace_id = %(ws)s AND event_id IN ("
        " SELECT o.event_id FROM tracking_orders o WHERE o.workspace_id = %(ws)s "
        "  AND o.at < %(before)s AND NOT EXISTS (SELECT 1 FROM tracking_hits h "
        "   WHERE h.workspace_id = %(ws)s AND h.processed_at IS NULL AND h.at <= o.at) "
        " ORDER BY o.at LIMIT %(limit)s) RETURNING event_id, at",
        {"ws": uow.workspace_id, "limit": limit, "before": before},
    )
    return [(row.event_id, row.at) for row in rows]


def skip_order(uow: UnitOfWork) -> Statement:
    return Statement(
        "DELETE FROM tracking_orders WHERE workspace_id = %(ws)s AND event_id = ("
        " SELECT event_id FROM tracking_orders WHERE workspace_id = %(ws)s ORDER BY at LIMIT 1)",
        {"ws": uow.workspace_id},
    )


def skip_message_event(uow: UnitOfWork) -> Statement:
    return Statement(
        "DELETE FROM message_events WHERE workspace_id = %(ws)s AND id = ("
        " SELECT id FROM message_events WHERE workspace_id = %(ws)s ORDER BY id LIMIT 1)",
        {"ws": uow.workspace_id},
    )


async def last_sent(
    uow: UnitOfWork, profile_ids: Sequence[UUID], purpose: str, since: datetime
) -> Sent | None:
    """The newest message of `purpose` sent to any of these profiles since `since`."""
    rows = await uow.fetch(
        f"{_SENT} "
        "WHERE d.workspace_id = %(ws)s AND d.profile_id = ANY(%(ids)s::uuid[]) "
        " AND d.sent_at >= %(since)s AND c.purpose = %(purpose)s "
        "ORDER BY d.sent_at DESC LIMIT 1",
        {"ws": uow.workspace_id, "ids": list(profile_ids), "since": since, "purpose": purpose},
    )
    return Sent(*rows[0]) if rows else None


async def mark_unsubscribed(uow: UnitOfWork, sent: Sent, at: datetime) -> bool:
    """Note the message as the one its recipient unsubscribed from; False if noted before."""
    rows = await uow.fetch(
        "INSERT INTO delivery_engagement AS g (workspace_id, delivery_id, campaign_id, variant, "
        " profile_id, unsubscribed_at) "
        "VALUES (%(ws)s, %(d)s, %(c)s, %(v)s, %(p)s, %(at)s) "
        "ON CONFLICT (workspace_id, delivery_id) DO UPDATE SET unsubscribed_at = %(at)s "
        " WHERE g.unsubscribed_at IS NULL RETURNING 1",
        {"ws": uow.workspace_id, "d": sent.delivery_id, "c": sent.campaign_id,
         "v": sent.variant, "p": sent.profile_id, "at": at},
    )  # fmt: skip
    return bool(rows)


def _sums() -> str:
    return ", ".join(f"sum({name}) AS {name}" for name in ALL_COUNTERS)


def _both(where: str) -> str:
    """The counters rolled up and the deltas not yet, as one relation."""
    columns = ", ".join(("campaign_id", "variant", "bucket", *ALL_COUNTERS))
    return (f"(SELECT {columns} FROM message_stats WHERE {where} UNION ALL "  # noqa: S608 - fixed names
            f"SELECT {columns} FROM message_stats_deltas WHERE {where}) s")  # fmt: skip


async def totals(uow: UnitOfWork, campaign_ids: Sequence[UUID]) -> list[Any]:
    """Each campaign's counters by variant: rows of (campaign_id, variant, counters...)."""
    where = "workspace_id = %(ws)s AND campaign_id = ANY(%(ids)s::uuid[])"
    return await uow.fetch(
        f"SELECT campaign_id, variant, {_sums()} FROM {_both(where)} GROUP BY 1, 2",  # noqa: S608 - fixed names
        {"ws": uow.workspace_id, "ids": sorted(set(campaign_ids))},
    )


INTERVALS = ("hour", "day", "week", "month")


async def series(
    uow: UnitOfWork, start: datetime, end: datetime, interval: str,
    campaign_ids: Sequence[UUID] | None,
) -> list[Any]:  # fmt: skip
    """The counters summed by `interval` (UTC) over [start, end): rows of (at, counters...)."""
    if interval not in INTERVALS:
        raise ValueError(interval)
    where = (
        "workspace_id = %(ws)s AND bucket >= date_trunc(%(interval)s, "
        "%(from)s::timestamptz, 'UTC') AND bucket < %(to)s"
    )
    if campaign_ids is not None:
        where += " AND campaign_id = ANY(%(ids)s::uuid[])"
    return await uow.fetch(
        f"SELECT date_trunc(%(interval)s, bucket, 'UTC') AS at, {_sums()} "  # noqa: S608 - fixed names
        f"FROM {_both(where)} GROUP BY 1 ORDER BY 1",
        {"ws": uow.workspace_id, "from": start, "to": end, "interval": interval,
         "ids": sorted(set(campaign_ids or ()))},
    )  # fmt: skip


async def journey_campaigns(uow: UnitOfWork, journey_id: UUID) -> dict[UUID, str]:
    """The step campaigns of a journey (every version): campaign id -> step id."""
    rows = await uow.fetch(
        "SELECT id, journey_step FROM campaigns WHERE workspace_id = %(ws)s "
        "AND journey_id = %(journey)s",
        {"ws": uow.workspace_id, "journey": journey_id},
    )
    return {row.id: row.journey_step for row in rows}


async def prune_hits(uow: UnitOfWork, before: datetime, limit: int) -> int:
    """Delete up to `limit` processed hits older than `before`, every workspace's; how many."""
    rows = await uow.fetch("SELECT cdp_prune_tracking_hits(%(before)s, %(limit)s) AS n",
                           {"before": before, "limit": limit})  # fmt: skip
    return int(rows[0].n)
