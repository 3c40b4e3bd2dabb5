"""The segments' SQL: definitions and references in SQLAlchemy Core, memberships as raw statements.

A membership change is one statement: the compiled definition selects the
members, and the same statement adds the new ones, removes the ones that
left, and writes both to the history. Raw, because the compiled selection is
raw SQL (cdp/segments/compiler.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, delete, func, insert, select, update

from cdp.segments.compiler import CompiledQuery
from cdp.segments.tables import (
    segment_members,
    segment_membership_history,
    segment_references,
    segment_upkeep_requests,
    segments,
)
from cdp.tables import events, profiles
from domain.advisory import xact_lock
from domain.sqlparams import array_literal
from domain.uow import Statement, UnitOfWork

# Hashed sets of profile ids (the compiled `IN` and `NOT IN`) stay in memory
# for a segment of a million members only with this much working memory.
EVALUATION_WORK_MEM = "256MB"
# An evaluation's estimated cost crosses PostgreSQL's JIT thresholds, and JIT
# then costs more than it saves, per statement (bench/README.md, "Segments").
# Index probes are priced as on a disk that seeks: with the default, the
# planner reads all of a workspace's profiles to find a thousand of them by id.
_EVALUATION_SETTINGS = Statement(
    "SELECT set_config('work_mem', %(mem)s, true) AS work_mem, set_config('jit', 'off', true) AS jit, "
    "set_config('random_page_cost', '1.1', true) AS random_page_cost",
    {"mem": EVALUATION_WORK_MEM},
)


@dataclass(frozen=True)
class SegmentRow:
    id: UUID
    name: str
    description: str | None
    definition: dict[str, Any]
    version: int
    computed_version: int
    computed_at: datetime | None
    uses_time: bool
    evaluated_at: datetime | None
    created_at: datetime
    updated_at: datetime


def _row(row: Row[Any]) -> SegmentRow:
    return SegmentRow(**row._asdict())


_COLUMNS = [segments.c[name] for name in SegmentRow.__dataclass_fields__]


async def get(uow: UnitOfWork, segment_id: UUID, *, for_update: bool = False) -> SegmentRow | None:
    query = select(*_COLUMNS).where(
        segments.c.workspace_id == uow.workspace_id, segments.c.id == segment_id
    )
    if for_update:
        query = query.with_for_update()
    row = (await uow.execute(query)).one_or_none()
    return None if row is None else _row(row)


async def get_many(uow: UnitOfWork, segment_ids: Sequence[UUID]) -> dict[UUID, SegmentRow]:
    rows = await uow.execute(
        select(*_COLUMNS).where(
            segments.c.workspace_id == uow.workspace_id, segments.c.id.in_(list(segment_ids))
        )
    )
    return {row.id: _row(row) for row in rows}


async def page(uow: UnitOfWork, *, after: UUID | None, limit: int) -> list[SegmentRow]:
    query = select(*_COLUMNS).where(segments.c.workspace_id == uow.workspace_id)
    if after is not None:
        query = query.where(segments.c.id > after)
    rows = await uow.execute(query.order_by(segments.c.id).limit(limit))
    return [_row(row) for row in rows]


async def name_taken(uow: UnitOfWork, name: str, *, other_than: UUID | None) -> bool:
    query = select(segments.c.id).where(
        segments.c.workspace_id == uow.workspace_id, segments.c.name == name
    )
    if other_than is not None:
        query = query.where(segments.c.id != other_than)
    return (await uow.execute(query)).first() is not None


async def insert_segment(uow: UnitOfWork, row: SegmentRow) -> None:
    await uow.execute(insert(segments).values(workspace_id=uow.workspace_id, **row.__dict__))


async def update_definition(
    uow: UnitOfWork,
    segment_id: UUID,
    *,
    name: str,
    description: str | None,
    definition: dict[str, Any],
    uses_time: bool,
    at: datetime,
) -> SegmentRow:
    row = (
        await uow.execute(
            update(segments)
            .where(segments.c.workspace_id == uow.workspace_id, segments.c.id == segment_id)
            .values(
                name=name,
                description=description,
                definition=definition,
                uses_time=uses_time,
                version=segments.c.version + 1,
                updated_at=at,
            )
            .returning(*_COLUMNS)
        )
    ).one()
    return _row(row)


async def mark_computed(uow: UnitOfWork, segment_id: UUID, version: int, at: datetime) -> None:
    """The full evaluation of `version` ended at `at`, and evaluated the members as of `at`."""
    await uow.execute(
        update(segments)
        .where(
            segments.c.workspace_id == uow.workspace_id,
            segments.c.id == segment_id,
            segments.c.computed_version <= version,
        )
        .values(computed_version=version, computed_at=at, evaluated_at=at)
    )


async def mark_evaluated(uow: UnitOfWork, segment_id: UUID, at: datetime) -> None:
    await uow.execute(
        update(segments)
        .where(segments.c.workspace_id == uow.workspace_id, segments.c.id == segment_id)
        .values(evaluated_at=at)
    )


async def all_segments(uow: UnitOfWork) -> list[SegmentRow]:
    rows = await uow.execute(
        select(*_COLUMNS).where(segments.c.workspace_id == uow.workspace_id).order_by(segments.c.id)
    )
    return [_row(row) for row in rows]


async def workspaces_with_segments(uow: UnitOfWork) -> list[UUID]:
    """Every workspace that has a segment (an owner function: the runtime role sees one)."""
    rows = await uow.fetch("SELECT workspace_id FROM cdp_segment_workspaces()", {})
    return [row.workspace_id for row in rows]


# Upkeep

# A change checks whether its workspace has segments before queuing anything.
# The check and the first segment's full evaluation could pass each other: a
# change that saw no segment and committed after the evaluation began would
# be in no segment's queue and not in the evaluation. So a change holds this
# lock shared from before its check until it commits, and creating a segment
# takes it exclusively: the creation waits for the changes in flight, which
# the evaluation then sees, and the changes after it see the segment.
_FIRST_SEGMENT = "segment-first:{}"


def change_lock(workspace_id: UUID) -> Statement:
    return xact_lock(_FIRST_SEGMENT.format(workspace_id), shared=True)


async def lock_out_changes(uow: UnitOfWork) -> None:
    """Wait for the workspace's changes in flight, and hold new ones until this commits."""
    await uow.pipeline(xact_lock(_FIRST_SEGMENT.format(uow.workspace_id), shared=False))


_QUEUE_CHANGES = (
    "WITH queued AS ("
    " INSERT INTO segment_pending (workspace_id, changes, profiles)"
    " SELECT %(ws)s, %(rows)s::jsonb, %(profiles)s"
    " WHERE EXISTS (SELECT 1 FROM segments s WHERE s.workspace_id = %(ws)s)"
    " RETURNING 1), "
    "requested AS ("
    " INSERT INTO segment_upkeep_requests (workspace_id)"
    " SELECT %(ws)s WHERE EXISTS (SELECT 1 FROM queued)"
    " ON CONFLICT DO NOTHING RETURNING workspace_id) "
    "INSERT INTO outbox (id, actor_name, queue_name, args, kwargs, options)"
    " SELECT %(job)s, %(actor)s, %(queue)s, jsonb_build_array(%(ws)s::text), '{}', '{}'"
    " FROM requested RETURNING id"
)


def queue_changes(
    workspace_id: UUID, rows: str, profiles: int, *, job_id: UUID, actor: str, queue: str
) -> Statement:
    """Queue `profiles` profiles for upkeep (`rows`: JSON of [{pid, reasons}]), and the workspace's job if none is queued.

    Nothing is queued in a workspace without segments. The change holds the
    workspace's change lock shared (`change_lock`) until it commits, and the
    job takes the request (`take_upkeep_request`) under that lock held
    exclusively, before it claims: a change that found a job queued commits
    before the job claims, so the job sees its row. Shared locks do not hold
    concurrent changes up, and unlike a share lock on the request's row they
    write nothing (many lockers of one row make a multixact each).
    """
    params = {
        "ws": workspace_id, "rows": rows, "profiles": profiles, "job": job_id, "actor": actor,
        "queue": queue,
    }  # fmt: skip
    return Statement(_QUEUE_CHANGES, params, writes_jobs=True)


async def take_upkeep_request(uow: UnitOfWork) -> None:
    """Let the next change queue a new job, once the changes in flight have committed."""
    await lock_out_changes(uow)
    await uow.execute(
        delete(segment_upkeep_requests).where(
            segment_upkeep_requests.c.workspace_id == uow.workspace_id
        )
    )


# The oldest queued changes whose profiles, counted before each, number fewer
# than the limit, skipping those a concurrent claim holds. Each change names
# at least one profile, so the first `limit` changes are enough to look at.
_CLAIM = (
    "WITH listed AS (SELECT id, sum(profiles) OVER (ORDER BY id) - profiles AS before "
    " FROM segment_pending WHERE workspace_id = %(ws)s ORDER BY id LIMIT %(limit)s), "
    "bound AS (SELECT max(id) AS id FROM listed WHERE before < %(limit)s) "
    "DELETE FROM segment_pending p WHERE p.workspace_id = %(ws)s AND p.id IN ("
    " SELECT q.id FROM segment_pending q WHERE q.workspace_id = %(ws)s "
    " AND q.id <= (SELECT id FROM bound) ORDER BY q.id FOR UPDATE SKIP LOCKED) "
    "RETURNING p.changes"
)


async def claim_pending(uow: UnitOfWork, limit: int) -> dict[UUID, frozenset[str]]:
    """Take the oldest queued changes, about `limit` profiles' worth, folded per profile.

    A concurrent claim takes others; a change queued while this runs is left
    for the next claim.
    """
    rows = await uow.fetch(_CLAIM, {"ws": uow.workspace_id, "limit": limit})
    folded: dict[str, set[str]] = {}
    for row in rows:
        for change in row.changes:
            folded.setdefault(change["pid"], set()).update(change["reasons"])
    return {UUID(pid): frozenset(why) for pid, why in folded.items()}


async def segment_work(uow: UnitOfWork) -> list[tuple[UUID, bool]]:
    """Each workspace with queued upkeep or time-window segments, and whether it has the latter."""
    work = func.cdp_segment_work().table_valued("workspace_id", "timed")
    rows = await uow.execute(select(work.c.workspace_id, work.c.timed))
    return [(row.workspace_id, bool(row.timed)) for row in rows]


async def delete_segment(uow: UnitOfWork, segment_id: UUID) -> None:
    ws = uow.workspace_id
    for table, column in (
        (segment_members, segment_members.c.segment_id),
        (segment_membership_history, segment_membership_history.c.segment_id),
        (segment_references, segment_references.c.segment_id),
        (segments, segments.c.id),
    ):
        await uow.execute(delete(table).where(table.c.workspace_id == ws, column == segment_id))


# References


async def replace_references(uow: UnitOfWork, segment_id: UUID, referenced: set[UUID]) -> None:
    ws = uow.workspace_id
    await uow.execute(
        delete(segment_references).where(
            segment_references.c.workspace_id == ws, segment_references.c.segment_id == segment_id
        )
    )
    if referenced:
        await uow.execute(
            insert(segment_references),
            [
                {"workspace_id": ws, "segment_id": segment_id, "referenced_id": r}
                for r in referenced
            ],
        )


async def referenced_by(uow: UnitOfWork, segment_id: UUID) -> list[UUID]:
    """The segments whose definitions name this one."""
    rows = await uow.execute(
        select(segment_references.c.segment_id).where(
            segment_references.c.workspace_id == uow.workspace_id,
            segment_references.c.referenced_id == segment_id,
        )
    )
    return sorted(row.segment_id for row in rows)


async def reference_graph(uow: UnitOfWork) -> dict[UUID, set[UUID]]:
    """Each segment of the workspace and the segments its definition names."""
    graph: dict[UUID, set[UUID]] = {}
    rows = await uow.execute(
        select(segment_references.c.segment_id, segment_references.c.referenced_id).where(
            segment_references.c.workspace_id == uow.workspace_id
        )
    )
    for row in rows:
        graph.setdefault(row.segment_id, set()).add(row.referenced_id)
    return graph


async def lock_reference_graph(uow: UnitOfWork) -> None:
    """Serialize the workspace's segment edits, so that two of them cannot make a cycle together."""
    key = f"segment-graph:{uow.workspace_id}"
    await uow.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


async def lock_segments(uow: UnitOfWork, segment_ids: Sequence[UUID]) -> None:
    """Serialize membership writes per segment, in a fixed order so that they never deadlock."""
    if not segment_ids:
        return
    # The subquery hands the ids over in order; the locks are taken in it.
    await uow.fetch(
        "SELECT pg_advisory_xact_lock(hashtextextended('segment:' || s.id::text, 0)) "
        "FROM (SELECT DISTINCT id FROM unnest(%(ids)s::uuid[]) AS t(id) ORDER BY id) s",
        {"ids": list(segment_ids)},
    )


# Members


@dataclass(frozen=True)
class MembershipChange:
    entered: int
    exited: int


# The members before and after are each read once and compared by hash; only
# the difference is written, so an evaluation that changes little writes
# little. Every writer of a segment's members holds its lock
# (`lock_segments`), so the rows read as present are all there are: the
# insert needs no ON CONFLICT, whose speculative insertion costs more. The
# exits are deleted by their row addresses, read with the members (a TID
# scan, which costs nothing when nobody leaves): as a join, with the
# members' statistics stale (never analyzed since they were written), the
# planner expected one member and compared every member with every other.
# Entries are inserted in profile order, so the index insertions walk each
# index once instead of landing at random (bench/README.md, "Segments").
_APPLY = (
    "WITH target AS MATERIALIZED ({members}), "
    "present AS MATERIALIZED (SELECT m.profile_id, m.ctid AS row FROM segment_members m "
    " WHERE m.workspace_id = %(ws)s AND m.segment_id = %(segment)s), "
    "entered AS (INSERT INTO segment_members (workspace_id, segment_id, profile_id, since) "
    " SELECT %(ws)s, %(segment)s, t.id, %(at)s FROM target t "
    " WHERE t.id NOT IN (SELECT profile_id FROM present) ORDER BY t.id "
    " RETURNING profile_id), "
    "exited AS (DELETE FROM segment_members m WHERE m.ctid = ANY(ARRAY("
    "  SELECT row FROM present WHERE profile_id NOT IN (SELECT id FROM target))) "
    " RETURNING m.profile_id), "
    "logged AS (INSERT INTO segment_membership_history "
    " (workspace_id, change_id, segment_id, profile_id, entered, at) "
    " SELECT %(ws)s, %(change)s, %(segment)s, profile_id, true, %(at)s FROM entered "
    " UNION ALL SELECT %(ws)s, %(change)s, %(segment)s, profile_id, false, %(at)s FROM exited) "
    "SELECT (SELECT count(*) FROM entered) AS entered, (SELECT count(*) FROM exited) AS exited"
)


async def apply_members(
    uow: UnitOfWork, segment_id: UUID, members: CompiledQuery, *, change_id: UUID, at: datetime
) -> MembershipChange:
    """Make the segment's members those `members` selects (a full evaluation)."""
    params = {**members.params, "segment": segment_id, "change": change_id, "at": at}
    [_, rows] = await uow.pipeline(
        _EVALUATION_SETTINGS,
        Statement(_APPLY.format(members=members.sql), params, prepare=False),
    )
    return MembershipChange(entered=int(rows[0].entered), exited=int(rows[0].exited))


# The verdicts of a batch of profiles for several segments (`compiler.verdicts_query`),
# applied in one statement: the profiles' memberships are read once, a probe
# per profile (OFFSET 0 keeps it one, whatever the statistics), compared
# with the verdicts, and only the differences are written.
_APPLY_VERDICTS = (
    "WITH verdict AS MATERIALIZED (SELECT (%(segments)s::uuid[])[v.n + 1] AS segment_id, "
    " v.profile_id, v.member FROM ({verdicts}) v), "
    "present AS MATERIALIZED (SELECT m.segment_id, m.profile_id "
    " FROM unnest(%(ids)s::uuid[]) AS b(id) CROSS JOIN LATERAL ("
    "  SELECT m.segment_id, m.profile_id FROM segment_members m "
    "  WHERE m.workspace_id = %(ws)s AND m.profile_id = b.id OFFSET 0) m), "
    "moved AS MATERIALIZED (SELECT v.segment_id, v.profile_id, v.member FROM verdict v "
    " LEFT JOIN present m ON m.segment_id = v.segment_id AND m.profile_id = v.profile_id "
    " WHERE v.member <> (m.profile_id IS NOT NULL)), "
    "entered AS (INSERT INTO segment_members (workspace_id, segment_id, profile_id, since) "
    " SELECT %(ws)s, segment_id, profile_id, %(at)s FROM moved WHERE member "
    " ORDER BY profile_id, segment_id RETURNING segment_id, profile_id), "
    "exited AS (DELETE FROM segment_members m USING moved x WHERE m.workspace_id = %(ws)s "
    " AND m.segment_id = x.segment_id AND m.profile_id = x.profile_id AND NOT x.member "
    " RETURNING m.segment_id, m.profile_id), "
    "logged AS (INSERT INTO segment_membership_history "
    " (workspace_id, change_id, segment_id, profile_id, entered, at) "
    " SELECT %(ws)s, %(change)s, segment_id, profile_id, true, %(at)s FROM entered "
    " UNION ALL SELECT %(ws)s, %(change)s, segment_id, profile_id, false, %(at)s FROM exited) "
    "SELECT segment_id, count(*) FILTER (WHERE entered) AS entered, "
    " count(*) FILTER (WHERE NOT entered) AS exited FROM ("
    " SELECT segment_id, true AS entered FROM entered "
    " UNION ALL SELECT segment_id, false FROM exited) c GROUP BY segment_id"
)


async def apply_verdicts(
    uow: UnitOfWork,
    segment_ids: Sequence[UUID],
    verdicts: CompiledQuery,
    *,
    change_id: UUID,
    at: datetime,
) -> dict[UUID, MembershipChange]:
    """Make each segment's membership of each profile what `verdicts` says (row n is segment_ids[n]).

    The caller holds the segments' locks. Returns the changes, per segment that moved.
    """
    params = {**verdicts.params, "segments": list(segment_ids), "change": change_id, "at": at}
    [_, rows] = await uow.pipeline(
        _EVALUATION_SETTINGS,
        Statement(_APPLY_VERDICTS.format(verdicts=verdicts.sql), params, prepare=False),
    )
    return {
        row.segment_id: MembershipChange(entered=int(row.entered), exited=int(row.exited))
        for row in rows
    }


async def profile_ids(uow: UnitOfWork, query: CompiledQuery) -> list[UUID]:
    rows = await uow.fetch(query.sql, query.params)
    return sorted({row.id for row in rows})


async def preview(uow: UnitOfWork, members: CompiledQuery, sample: int) -> tuple[int, list[UUID]]:
    """How many profiles `members` selects, and the first `sample` of them by id."""
    sql = f"SELECT id, count(*) OVER () AS total FROM ({members.sql}) AS t ORDER BY id LIMIT %(n)s"  # noqa: S608 - compiled from fixed fragments
    [_, rows] = await uow.pipeline(
        _EVALUATION_SETTINGS,
        Statement(sql, {**members.params, "n": max(sample, 1)}, prepare=False),
    )
    total = int(rows[0].total) if rows else 0
    return total, [row.id for row in rows[:sample]]


async def size(uow: UnitOfWork, segment_ids: Sequence[UUID]) -> dict[UUID, int]:
    rows = await uow.execute(
        select(segment_members.c.segment_id, func.count())
        .where(
            segment_members.c.workspace_id == uow.workspace_id,
            segment_members.c.segment_id.in_(list(segment_ids)),
        )
        .group_by(segment_members.c.segment_id)
    )
    found = {row[0]: int(row[1]) for row in rows}
    return {segment_id: found.get(segment_id, 0) for segment_id in segment_ids}


async def member_page(
    uow: UnitOfWork, segment_id: UUID, *, after: UUID | None, limit: int
) -> list[UUID]:
    [page] = await member_pages(uow, [(segment_id, after, limit)])
    return page


async def member_pages(
    uow: UnitOfWork, pages: Sequence[tuple[UUID, UUID | None, int]]
) -> list[list[UUID]]:
    """Each (segment, after, limit) page of member ids, by id, in one statement."""
    if not pages:
        return []
    rows = await uow.fetch(
        "SELECT w.n, m.profile_id FROM unnest(%(segments)s::uuid[], %(afters)s::uuid[], "
        "%(limits)s::int[]) WITH ORDINALITY AS w(segment_id, after, lim, n) "
        "CROSS JOIN LATERAL (SELECT s.profile_id FROM segment_members s "
        "WHERE s.workspace_id = %(ws)s AND s.segment_id = w.segment_id "
        "AND (w.after IS NULL OR s.profile_id > w.after) "
        "ORDER BY s.profile_id LIMIT w.lim) AS m ORDER BY w.n, m.profile_id",
        {
            "ws": uow.workspace_id,
            "segments": [p[0] for p in pages],
            "afters": [p[1] for p in pages],
            "limits": [p[2] for p in pages],
        },
    )
    found: list[list[UUID]] = [[] for _ in pages]
    for row in rows:
        found[row.n - 1].append(row.profile_id)
    return found


async def segments_of(uow: UnitOfWork, profile_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
    """Each profile's segments, by the profile index, one probe per profile (`identities_of`)."""
    rows = await uow.fetch(
        "SELECT p.id AS profile_id, m.segment_id FROM unnest(%(ids)s::uuid[]) AS p(id) "
        "CROSS JOIN LATERAL (SELECT segment_id FROM segment_members WHERE workspace_id = %(ws)s "
        "AND profile_id = p.id OFFSET 0) AS m ORDER BY p.id, m.segment_id",
        {"ws": uow.workspace_id, "ids": array_literal(profile_ids)},
    )
    found: dict[UUID, list[UUID]] = {pid: [] for pid in profile_ids}
    for row in rows:
        found[row.profile_id].append(row.segment_id)
    return found


@dataclass(frozen=True)
class EventFactRow:
    name: str | None
    timestamp: datetime
    properties: dict[str, Any]


async def profile_events(
    uow: UnitOfWork, profile_id: UUID, names: Sequence[str], *, limit: int
) -> list[EventFactRow]:
    """The profile's latest events with these names."""
    if not names:
        return []
    rows = await uow.execute(
        select(events.c.name, events.c.timestamp, events.c.properties)
        .where(
            events.c.workspace_id == uow.workspace_id,
            events.c.profile_id == profile_id,
            events.c.name.in_(list(names)),
        )
        .order_by(events.c.timestamp.desc())
        .limit(limit)
    )
    return [EventFactRow(r.name, r.timestamp, r.properties) for r in rows]


async def is_restricted(uow: UnitOfWork, profile_id: UUID) -> bool:
    row = (
        await uow.execute(
            select(profiles.c.restricted_at).where(
                profiles.c.workspace_id == uow.workspace_id, profiles.c.id == profile_id
            )
        )
    ).one_or_none()
    return row is not None and row.restricted_at is not None


@dataclass(frozen=True)
class HistoryRow:
    segment_id: UUID
    profile_id: UUID
    entered: bool
    at: datetime


async def history(
    uow: UnitOfWork, profile_ids: Sequence[UUID], *, limit: int
) -> dict[UUID, list[HistoryRow]]:
    """Each profile's latest `limit` entries and exits, newest first."""
    h = segment_membership_history
    ranked = (
        select(
            h.c.segment_id,
            h.c.profile_id,
            h.c.entered,
            h.c.at,
            func.row_number()
            .over(partition_by=h.c.profile_id, order_by=(h.c.at.desc(), h.c.change_id.desc()))
            .label("n"),
        )
        .where(h.c.workspace_id == uow.workspace_id, h.c.profile_id.in_(list(profile_ids)))
        .subquery()
    )
    rows = await uow.execute(
        select(ranked.c.segment_id, ranked.c.profile_id, ranked.c.entered, ranked.c.at)
        .where(ranked.c.n <= limit)
        .order_by(ranked.c.profile_id, ranked.c.n)
    )
    found: dict[UUID, list[HistoryRow]] = {pid: [] for pid in profile_ids}
    for row in rows:
        found[row.profile_id].append(
            HistoryRow(row.segment_id, row.profile_id, row.entered, row.at)
        )
    return found


async def change_rows(uow: UnitOfWork, change_id: UUID) -> list[HistoryRow]:
    h = segment_membership_history
    rows = await uow.execute(
        select(h.c.segment_id, h.c.profile_id, h.c.entered, h.c.at).where(
            h.c.workspace_id == uow.workspace_id, h.c.change_id == change_id
        )
    )
    return [HistoryRow(r.segment_id, r.profile_id, r.entered, r.at) for r in rows]
