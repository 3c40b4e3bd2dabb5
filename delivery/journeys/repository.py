"""The journeys' SQL: journeys and versions, listened event names, enrollments and their moves."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import delete, func, select, update

from cdp import queries
from delivery.journeys.tables import (
    journey_enrollments,
    journey_listens,
    journey_requests,
    journey_versions,
    journeys,
)
from delivery.sending import repository as sending_store
from domain.sqlparams import json_rows
from domain.uow import Statement, UnitOfWork

DRAFT, ACTIVE, PAUSED, ARCHIVED = "DRAFT", "ACTIVE", "PAUSED", "ARCHIVED"


@dataclass(frozen=True)
class JourneyRow:
    id: UUID
    name: str
    status: str
    version: int
    activated_at: datetime | None
    created_at: datetime
    updated_at: datetime


_JOURNEY = [journeys.c[n] for n in JourneyRow.__dataclass_fields__]


@dataclass(frozen=True)
class EnrollmentRow:
    id: UUID
    journey_id: UUID
    version: int
    profile_id: UUID
    state: str
    step: str | None
    waiting: bool
    wake_at: datetime | None
    event: dict[str, Any] | None
    trigger_at: datetime
    entered_at: datetime
    finished_at: datetime | None
    exit_reason: str | None
    converted_at: datetime | None


_ENROLLMENT = [journey_enrollments.c[n] for n in EnrollmentRow.__dataclass_fields__]


def _journey(row: Any) -> JourneyRow:
    return JourneyRow(**row._asdict())


async def get(uow: UnitOfWork, journey_id: UUID, *, for_update: bool = False) -> JourneyRow | None:
    query = select(*_JOURNEY).where(journeys.c.workspace_id == uow.workspace_id,
                                    journeys.c.id == journey_id)  # fmt: skip
    if for_update:
        query = query.with_for_update()
    row = (await uow.execute(query)).one_or_none()
    return None if row is None else _journey(row)


async def get_many(uow: UnitOfWork, ids: Sequence[UUID]) -> dict[UUID, JourneyRow]:
    rows = await uow.execute(select(*_JOURNEY).where(journeys.c.workspace_id == uow.workspace_id,
                                                     journeys.c.id.in_(ids)))  # fmt: skip
    return {row.id: _journey(row) for row in rows}


async def page(uow: UnitOfWork, *, after: UUID | None, limit: int) -> list[JourneyRow]:
    query = select(*_JOURNEY).where(journeys.c.workspace_id == uow.workspace_id)
    if after is not None:
        query = query.where(journeys.c.id > after)
    rows = await uow.execute(query.order_by(journeys.c.id).limit(limit))
    return [_journey(row) for row in rows]


async def name_taken(uow: UnitOfWork, name: str, *, other_than: UUID | None) -> bool:
    query = select(journeys.c.id).where(journeys.c.workspace_id == uow.workspace_id,
                                        journeys.c.name == name)  # fmt: skip
    if other_than is not None:
        query = query.where(journeys.c.id != other_than)
    return (await uow.execute(query)).first() is not None


async def insert(uow: UnitOfWork, journey_id: UUID, name: str, definition: Any) -> None:
    now = uow.clock.now()
    await uow.execute(journeys.insert().values(
        workspace_id=uow.workspace_id, id=journey_id, name=name, status=DRAFT, version=1,
        created_at=now, updated_at=now))  # fmt: skip
    await insert_version(uow, journey_id, 1, definition)


async def insert_version(uow: UnitOfWork, journey_id: UUID, version: int, definition: Any) -> None:
    await uow.execute(journey_versions.insert().values(
        workspace_id=uow.workspace_id, journey_id=journey_id, version=version,
        definition=definition, created_at=uow.clock.now()))  # fmt: skip


async def set_journey(uow: UnitOfWork, journey_id: UUID, **values: Any) -> None:
    await uow.execute(
        update(journeys)
        .where(journeys.c.workspace_id == uow.workspace_id, journeys.c.id == journey_id)
        .values(updated_at=uow.clock.now(), **values)
    )


async def definitions(
    uow: UnitOfWork, keys: Sequence[tuple[UUID, int]]
) -> dict[tuple[UUID, int], Any]:
    """The definition of each (journey, version) asked for."""
    if not keys:
        return {}
    v = journey_versions
    rows = await uow.execute(
        select(v.c.journey_id, v.c.version, v.c.definition).where(
            v.c.workspace_id == uow.workspace_id,
            v.c.journey_id.in_({k[0] for k in keys}),
        )
    )
    wanted = set(keys)
    return {(r.journey_id, r.version): r.definition for r in rows if (r.journey_id, r.version)
            in wanted}  # fmt: skip


async def all_definitions(uow: UnitOfWork, journey_id: UUID) -> dict[int, Any]:
    v = journey_versions
    rows = await uow.execute(select(v.c.version, v.c.definition).where(
        v.c.workspace_id == uow.workspace_id, v.c.journey_id == journey_id))  # fmt: skip
    return {r.version: r.definition for r in rows}


async def live(uow: UnitOfWork, *, lock: bool = False) -> list[JourneyRow]:
    """The journeys that listen for events: active and paused ones. With `lock`, share-locked
    until the transaction ends, so a pause or an archive waits for what enrols under them."""
    query = select(*_JOURNEY).where(journeys.c.workspace_id == uow.workspace_id,
                                    journeys.c.status.in_((ACTIVE, PAUSED)))  # fmt: skip
    if lock:
        query = query.order_by(journeys.c.id).with_for_update(read=True)
    return [_journey(row) for row in await uow.execute(query)]


async def not_archived(uow: UnitOfWork) -> list[JourneyRow]:
    rows = await uow.execute(select(*_JOURNEY).where(
        journeys.c.workspace_id == uow.workspace_id, journeys.c.status != ARCHIVED))  # fmt: skip
    return [_journey(row) for row in rows]


async def set_listens(uow: UnitOfWork, journey_id: UUID, names: Sequence[str]) -> None:
    await uow.execute(delete(journey_listens).where(
        journey_listens.c.workspace_id == uow.workspace_id,
        journey_listens.c.journey_id == journey_id))  # fmt: skip
    if names:
        await uow.execute(journey_listens.insert(), [
            {"workspace_id": uow.workspace_id, "name": n, "journey_id": journey_id}
            for n in sorted(set(names))])  # fmt: skip


# --- enrollments ---------------------------------------------------------------

_ENROL = (
    "INSERT INTO journey_enrollments (workspace_id, id, journey_id, version, profile_id, state, "
    " step, waiting, wake_at, trigger_key, once_key, event, trigger_at, entered_at, updated_at) "
    "SELECT %(ws)s, e.id, e.journey, e.version, e.profile, 'ACTIVE', e.step, false, %(now)s, "
    " e.tkey, e.okey, e.event, e.tat, %(now)s, %(now)s "
    "FROM jsonb_to_recordset(%(rows)s::jsonb) AS e(id uuid, journey uuid, version int, "
    " profile uuid, step text, tkey text, okey text, event jsonb, tat timestamptz) "
    # Only into a journey still active: its row is share-locked, so a pause or an archive
    # in flight is waited for and then seen.
    "WHERE e.journey IN (SELECT j.id FROM journeys j WHERE j.workspace_id = %(ws)s "
    " AND j.status = 'ACTIVE' FOR SHARE) "
    "ON CONFLICT DO NOTHING RETURNING id, journey_id"
)


@dataclass(frozen=True)
class Entry:
    id: UUID
    journey_id: UUID
    version: int
    profile_id: UUID
    step: str | None
    trigger_key: str | None
    once_key: str | None
    event: dict[str, Any] | None
    trigger_at: datetime


async def enrol(uow: UnitOfWork, entries: Sequence[Entry]) -> list[tuple[UUID, UUID]]:
    """Insert the enrollments, due at once; the (id, journey) of those the re-entry rule and the
    trigger's key let in."""
    if not entries:
        return []
    rows = orjson.dumps([
        {"id": str(e.id), "journey": str(e.journey_id), "version": e.version,
         "profile": str(e.profile_id), "step": e.step, "tkey": e.trigger_key,
         "okey": e.once_key, "event": e.event, "tat": e.trigger_at.isoformat()}
        for e in entries
    ]).decode()  # fmt: skip
    found = await uow.fetch(_ENROL, {"ws": uow.workspace_id, "now": uow.clock.now(),
                                     "rows": rows})  # fmt: skip
    return [(r.id, r.journey_id) for r in found]


_CLAIM = (
    "SELECT {columns} FROM journey_enrollments e "
    "WHERE e.workspace_id = %(ws)s AND e.journey_id = %(j)s AND e.state = 'ACTIVE' "
    " AND e.wake_at IS NOT NULL AND e.wake_at <= %(now)s "
    "ORDER BY e.wake_at LIMIT %(n)s FOR UPDATE SKIP LOCKED"
)
_COLUMN_NAMES = ", ".join(f"e.{n}" for n in EnrollmentRow.__dataclass_fields__)


async def claim_due(
    uow: UnitOfWork, journey_ids: Sequence[UUID], limit: int
) -> list[EnrollmentRow]:
    """Up to `limit` due enrollments of these journeys, earliest first in each, locked until
    the transaction ends. Each journey is an index range of its own, so the due rows of a
    paused journey are never read."""
    found: list[EnrollmentRow] = []
    for journey_id in journey_ids:
        if len(found) >= limit:
            break
        rows = await uow.fetch(_CLAIM.format(columns=_COLUMN_NAMES), {
            "ws": uow.workspace_id, "j": journey_id, "now": uow.clock.now(),
            "n": limit - len(found)})  # fmt: skip
        found.extend(EnrollmentRow(**row._asdict()) for row in rows)
    return found


_MOVE = (
    "UPDATE journey_enrollments e SET state = m.state, step = m.step, waiting = m.waiting, "
    " wake_at = m.wake, exit_reason = m.reason, "
    " finished_at = CASE WHEN m.state = 'ACTIVE' THEN NULL ELSE %(now)s END, "
    " once_key = CASE WHEN m.state <> 'ACTIVE' AND e.once_key = 'active' THEN NULL "
    "  ELSE e.once_key END, updated_at = %(now)s "
    "FROM jsonb_to_recordset(%(rows)s::jsonb) AS m(id uuid, state text, step text, "
    " waiting boolean, wake timestamptz, reason text) "
    "WHERE e.workspace_id = %(ws)s AND e.id = m.id"
)


@dataclass(frozen=True)
class Move:
    id: UUID
    state: str
    step: str | None
    waiting: bool
    wake_at: datetime | None
    exit_reason: str | None


async def record_moves(uow: UnitOfWork, moves: Sequence[Move]) -> None:
    if not moves:
        return
    rows = orjson.dumps([
        {"id": str(v.id), "state": v.state, "step": v.step, "waiting": v.waiting,
         "wake": v.wake_at.isoformat() if v.wake_at else None, "reason": v.exit_reason}
        for v in moves
    ]).decode()  # fmt: skip
    await uow.fetch(_MOVE, {"ws": uow.workspace_id, "now": uow.clock.now(), "rows": rows})
    left = [{"id": str(v.id), "reason": v.exit_reason or "exited"} for v in moves
            if v.state == "EXITED"]  # fmt: skip
    if left:
        await sending_store.skip_unsent_of_enrollments(uow, orjson.dumps(left).decode())


async def active_of(uow: UnitOfWork, profile_ids: Sequence[UUID],
                    journey_ids: Sequence[UUID]) -> list[EnrollmentRow]:  # fmt: skip
    """The profiles' active enrollments in these journeys, locked."""
    e = journey_enrollments
    rows = await uow.execute(
        select(*_ENROLLMENT).where(
            e.c.workspace_id == uow.workspace_id, e.c.profile_id.in_(profile_ids),
            e.c.journey_id.in_(journey_ids), e.c.state == "ACTIVE",
        ).order_by(e.c.id).with_for_update()
    )  # fmt: skip
    return [EnrollmentRow(**row._asdict()) for row in rows]


_CONVERT = (
    "UPDATE journey_enrollments e SET converted_at = g.at, updated_at = %(now)s "
    "FROM jsonb_to_recordset(%(rows)s::jsonb) AS g(journey uuid, profile uuid, "
    " at timestamptz, since timestamptz) "
    "WHERE e.workspace_id = %(ws)s AND e.journey_id = g.journey AND e.profile_id = g.profile "
    " AND e.converted_at IS NULL AND e.trigger_at <= g.at AND e.entered_at >= g.since"
)


async def convert(uow: UnitOfWork, goals: Sequence[tuple[UUID, UUID, datetime, datetime]]) -> None:
    """Mark conversions: (journey, profile, the goal event's time, the earliest entry it counts
    for)."""
    if not goals:
        return
    rows = orjson.dumps([
        {"journey": str(j), "profile": str(p), "at": at.isoformat(), "since": since.isoformat()}
        for j, p, at, since in goals
    ]).decode()  # fmt: skip
    await uow.fetch(_CONVERT, {"ws": uow.workspace_id, "now": uow.clock.now(), "rows": rows})


async def exit_all(uow: UnitOfWork, journey_id: UUID, reason: str) -> int:
    e = journey_enrollments
    now = uow.clock.now()
    result = await uow.execute(
        update(e).where(e.c.workspace_id == uow.workspace_id, e.c.journey_id == journey_id,
                        e.c.state == "ACTIVE")
        .values(state="EXITED", exit_reason=reason, finished_at=now, wake_at=None,
                once_key=func.nullif(e.c.once_key, "active"), updated_at=now)
    )  # fmt: skip
    return int(result.rowcount or 0)


async def enrollment_page(uow: UnitOfWork, *, journey_id: UUID | None, profile_ids: Sequence[UUID] | None,
                          after: UUID | None, limit: int) -> list[EnrollmentRow]:  # fmt: skip
    e = journey_enrollments
    query = select(*_ENROLLMENT).where(e.c.workspace_id == uow.workspace_id)
    if journey_id is not None:
        query = query.where(e.c.journey_id == journey_id)
    if profile_ids is not None:
        query = query.where(e.c.profile_id.in_(profile_ids))
    if after is not None:
        query = query.where(e.c.id > after)
    rows = await uow.execute(query.order_by(e.c.id).limit(limit))
    return [EnrollmentRow(**row._asdict()) for row in rows]


async def counts(uow: UnitOfWork, journey_id: UUID) -> dict[str, int]:
    """Enrollments by state, and how many converted."""
    e = journey_enrollments
    rows = await uow.execute(
        select(e.c.state, func.count(), func.count(e.c.converted_at))
        .where(e.c.workspace_id == uow.workspace_id, e.c.journey_id == journey_id)
        .group_by(e.c.state)
    )
    found: dict[str, int] = {"converted": 0}
    for state, n, converted in rows:
        found[state] = int(n)
        found["converted"] += int(converted)
    return found


async def counts_by_step(uow: UnitOfWork, journey_id: UUID) -> dict[tuple[str, str], int]:
    """Enrollments by (step, state): where the active are, where the others left."""
    e = journey_enrollments
    rows = await uow.execute(
        select(e.c.step, e.c.state, func.count())
        .where(e.c.workspace_id == uow.workspace_id, e.c.journey_id == journey_id,
               e.c.step.is_not(None))
        .group_by(e.c.step, e.c.state)
    )  # fmt: skip
    return {(step, state): int(n) for step, state, n in rows}


async def enrollments_by_id(uow: UnitOfWork, ids: list[UUID]) -> dict[UUID, EnrollmentRow]:
    e = journey_enrollments
    rows = await uow.execute(select(*_ENROLLMENT).where(e.c.workspace_id == uow.workspace_id,
                                                        e.c.id.in_(ids)))  # fmt: skip
    return {row.id: EnrollmentRow(**row._asdict()) for row in rows}


async def latest_of(
    uow: UnitOfWork, survivors: Sequence[UUID], *, limit: int
) -> dict[UUID, list[EnrollmentRow]]:
    """Each surviving profile's latest `limit` enrollments, with those of the ids merged into it."""
    merged = await queries.merged_ids(uow, list(survivors))
    owner = {pid: s for s, ids in merged.items() for pid in ids}
    for survivor in survivors:
        owner.setdefault(survivor, survivor)
    e = journey_enrollments
    rows = await uow.execute(select(*_ENROLLMENT).where(
        e.c.workspace_id == uow.workspace_id, e.c.profile_id.in_(list(owner)))
        .order_by(e.c.entered_at.desc(), e.c.id.desc()))  # fmt: skip
    found: dict[UUID, list[EnrollmentRow]] = {}
    for row in rows:
        mine = found.setdefault(owner[row.profile_id], [])
        if len(mine) < limit:
            mine.append(EnrollmentRow(**row._asdict()))
    return found


async def skip_pending(uow: UnitOfWork, left: Sequence[tuple[UUID, UUID, str]]) -> None:
    """Skip the messages of these journeys not yet sent to these profiles, (journey, profile,
    why): a purchase also stops a reminder that quiet hours or a retry still hold after the
    journey itself ended."""
    if not left:
        return
    rows = orjson.dumps([{"journey": str(j), "profile": str(p), "reason": why}
                         for j, p, why in left]).decode()  # fmt: skip
    await sending_store.skip_unsent_of_journeys(uow, rows)


_ARRIVALS = (
    "INSERT INTO journey_step_counts AS c (workspace_id, journey_id, step, entered) "
    "SELECT %(ws)s, a.journey, a.step, a.n FROM unnest(%(journeys)s::uuid[], %(steps)s::text[], "
    " %(ns)s::bigint[]) AS a(journey, step, n) ORDER BY a.journey, a.step "
    "ON CONFLICT (workspace_id, journey_id, step) DO UPDATE SET entered = c.entered + EXCLUDED.entered"
)


async def count_arrivals(uow: UnitOfWork, arrivals: Mapping[tuple[UUID, str], int]) -> None:
    """Add to each step's count of arrivals; in key order, so that batches never wait on each
    other in a cycle."""
    if not arrivals:
        return
    keys = sorted(arrivals)
    await uow.fetch(_ARRIVALS + " RETURNING 1", {
        "ws": uow.workspace_id, "journeys": [k[0] for k in keys], "steps": [k[1] for k in keys],
        "ns": [arrivals[k] for k in keys]})  # fmt: skip


async def arrivals_by_step(uow: UnitOfWork, journey_id: UUID) -> dict[str, int]:
    rows = await uow.fetch(
        "SELECT step, entered FROM journey_step_counts WHERE workspace_id = %(ws)s "
        "AND journey_id = %(j)s", {"ws": uow.workspace_id, "j": journey_id},
    )  # fmt: skip
    return {row.step: int(row.entered) for row in rows}


async def step_conversions(uow: UnitOfWork, journey_id: UUID) -> dict[str, int]:
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


# The inbox (`delivery.journeys.inbox`).

# One row per storing transaction, holding the ids of its events that a live
# journey listens for: a row per event would make ingest write each event twice
# (bench/README.md, "Journeys").
_QUEUE_EVENTS = (
    "WITH e AS (SELECT array_agg(e.id ORDER BY e.n) AS ids, array_agg(e.at ORDER BY e.n) AS ats "
    " FROM jsonb_to_recordset(%(events)s::jsonb) AS e(id uuid, at timestamptz, name text, n int) "
    " WHERE e.name IN (SELECT l.name FROM journey_listens l WHERE l.workspace_id = %(ws)s)), "
    "queued AS (INSERT INTO journey_inbox (workspace_id, event_ids, event_ats, events) "
    " SELECT %(ws)s, e.ids, e.ats, cardinality(e.ids) FROM e WHERE e.ids IS NOT NULL "
    " RETURNING 1), "
    "held AS (SELECT workspace_id FROM journey_requests WHERE workspace_id = %(ws)s "
    " AND EXISTS (SELECT 1 FROM queued) FOR KEY SHARE), "
    "requested AS (INSERT INTO journey_requests (workspace_id) SELECT %(ws)s "
    " WHERE EXISTS (SELECT 1 FROM queued) AND NOT EXISTS (SELECT 1 FROM held) "
    " ON CONFLICT DO NOTHING RETURNING workspace_id) "
    "INSERT INTO outbox (id, actor_name, queue_name, args, kwargs, options) "
    "SELECT %(job)s, %(actor)s, %(queue)s, jsonb_build_array(%(ws)s::text), '{}', '{}' "
    "FROM requested RETURNING id"
)


def queue_events(workspace_id: UUID, ids: Sequence[str], times: Sequence[datetime],
                 names: Sequence[str | None], *, job: tuple[UUID, str, str]) -> Statement:  # fmt: skip
    """The statement that queues a storing transaction's listened-for events, and the inbox
    job (id, actor, queue) unless one is requested already."""
    job_id, actor, queue = job
    # One JSON document: a list of strings costs psycopg a regular expression per item.
    events = json_rows([{"id": i, "at": t, "name": name, "n": n}
                        for n, (i, t, name) in enumerate(zip(ids, times, names, strict=True))])  # fmt: skip
    return Statement(_QUEUE_EVENTS, {
        "ws": workspace_id, "events": events, "job": job_id, "actor": actor, "queue": queue,
    }, writes_jobs=True)  # fmt: skip


# Each event is a probe of its partition's key (OFFSET 0 keeps it one): a join read
# every event of the workspace when the statistics were stale.
_CLAIM_INBOX = (
    "WITH claimed AS (SELECT i.id, i.event_ids, i.event_ats FROM journey_inbox i "
    " WHERE i.workspace_id = %(ws)s ORDER BY i.id LIMIT %(n)s FOR UPDATE SKIP LOCKED), "
    "gone AS (DELETE FROM journey_inbox d USING claimed c "
    " WHERE d.workspace_id = %(ws)s AND d.id = c.id) "
    "SELECT e.id, e.profile_id, e.name, e.message_id, e.timestamp, e.properties "
    "FROM claimed c CROSS JOIN LATERAL unnest(c.event_ids, c.event_ats) AS u(id, at) "
    "CROSS JOIN LATERAL (SELECT e.id, e.profile_id, e.name, e.message_id, e.timestamp, "
    " e.properties FROM events e "
    " WHERE e.workspace_id = %(ws)s AND e.id = u.id AND e.timestamp = u.at OFFSET 0) e "
    "ORDER BY e.timestamp, c.id"
)


async def take_inbox_request(uow: UnitOfWork) -> None:
    await uow.execute(delete(journey_requests).where(
        journey_requests.c.workspace_id == uow.workspace_id))  # fmt: skip


async def claim_inbox(uow: UnitOfWork, limit: int) -> list[Any]:
    """The oldest queued events' rows, the inbox rows deleted with this transaction, under the
    workspace's inbox lock (one batch at a time per workspace)."""
    await uow.fetch("SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0))",
                    {"key": f"journey-inbox:{uow.workspace_id}"})  # fmt: skip
    return list(await uow.fetch(_CLAIM_INBOX, {"ws": uow.workspace_id, "n": limit}))
