"""Test data written straight to the tables: one statement a table, however many rows.

Every factory writes to a target:
- a psycopg connection, normally `seeding(database_url)`'s: the database owner,
  whom row-level security does not stop, so it seeds any workspace; the rows
  are there for the app once the `with` block commits;
- a `UnitOfWork`: the runtime role, in the unit's transaction and workspace.
  The statements are deferred (`UnitOfWork.defer`) and travel with its next
  round trip or its commit, so no factory needs an await.

Ids are made here, so a factory returns what it created without reading it
back. Bulk factories write every row with one statement and take each column
as a constant or as a function of the row's index (0 to n-1). Identifier
values are stored as given: pass them normalized (emails lower-cased). Naive
datetimes are taken as UTC.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any, TypeAlias, TypeVar
from uuid import UUID

import orjson
import psycopg

from cdp.model import Identifier
from cdp.traits import stamp
from domain.db import libpq_url
from domain.ids import id_supply, new_id
from domain.outbox import Job
from domain.sqlparams import array_literal
from domain.uow import Statement, UnitOfWork

T = TypeVar("T")
Target: TypeAlias = psycopg.Connection[Any] | UnitOfWork
# A column's value for every row, or a function of the row's index.
PerRow: TypeAlias = T | Callable[[int], T]

_PROFILES = (
    "INSERT INTO profiles (workspace_id, id, merged_into, traits, trait_meta, computed,"
    " created_at, updated_at)"
    " SELECT %(ws)s, r.id, r.merged_into, r.traits, r.meta, r.computed, r.at, r.at"
    " FROM jsonb_to_recordset(%(rows)s::jsonb)"
    " AS r(id uuid, merged_into uuid, traits jsonb, meta jsonb, computed jsonb, at timestamptz)"
)
_IDENTITIES = (
    "INSERT INTO identities (workspace_id, kind, value, profile_id)"
    " SELECT %(ws)s, r.kind, r.value, r.pid"
    " FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(kind text, value text, pid uuid)"
)
_PARTITIONS = "SELECT cdp_ensure_event_partition(m) FROM unnest(%(months)s::date[]) AS m"
_EVENTS = (
    "INSERT INTO events (workspace_id, id, timestamp, profile_id, type, name, message_id,"
    " received_at, properties, context)"
    " SELECT %(ws)s, r.id, r.ts, r.pid, r.type, r.name, r.mid, r.ts, r.props, r.ctx"
    " FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(id uuid, ts timestamptz, pid uuid,"
    " type text, name text, mid text, props jsonb, ctx jsonb)"
)
_MESSAGE_IDS = (
    "INSERT INTO event_message_ids (workspace_id, message_id)"
    " SELECT %(ws)s, m FROM jsonb_array_elements_text(%(ids)s::jsonb) AS m"
)
_CONFLICT = (
    "INSERT INTO identity_conflicts (workspace_id, id, kind, value, held_by, claimed_by, rule,"
    " trigger, created_at)"
    " VALUES (%(ws)s, %(id)s, %(kind)s, %(value)s, %(held)s, %(claimed)s, %(rule)s, %(trigger)s,"
    " %(at)s)"
)
_CONSENT = (
    "INSERT INTO consent_records (workspace_id, id, profile_id, purpose, channel, status,"
    " lawful_basis, source, notice_version, actor, recorded_at)"
    " VALUES (%(ws)s, %(id)s, %(pid)s, %(purpose)s, %(channel)s, %(status)s, %(basis)s,"
    " %(source)s, %(notice)s, %(actor)s, %(at)s)"
)
_SUPPRESSION = (
    "INSERT INTO suppressions (workspace_id, digest, identifier_kind, channel, purpose, reason,"
    " source, created_at)"
    " VALUES (%(ws)s, %(digest)s, %(kind)s, %(channel)s, %(purpose)s, %(reason)s, %(source)s,"
    " %(at)s)"
)
_SEGMENT_MEMBERS = (
    "INSERT INTO segment_members (workspace_id, segment_id, profile_id, since)"
    " SELECT %(ws)s, %(segment)s, p, %(at)s FROM unnest(%(ids)s::uuid[]) AS p"
)
_RESTRICT = (
    "UPDATE profiles SET restricted_at = %(at)s WHERE workspace_id = %(ws)s AND id = ANY(%(ids)s)"
)
_OUTBOX = (
    "INSERT INTO outbox (id, actor_name, queue_name, args, kwargs, options, created_at, sent_at)"
    " VALUES (%(id)s, %(actor)s, %(queue)s, %(args)s::jsonb, %(kwargs)s::jsonb,"
    " %(options)s::jsonb, %(at)s, %(sent)s)"
)


@contextmanager
def seeding(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the database owner, committed when the block ends without an error."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        yield conn


def profiles(
    db: Target,
    workspace_id: UUID,
    n: int,
    *,
    traits: PerRow[dict[str, Any]] | None = None,
    computed: PerRow[dict[str, Any]] | None = None,
    created_at: PerRow[datetime] | None = None,
    merged_into: PerRow[UUID | None] = None,
) -> list[UUID]:
    """`n` profiles, their ids in ascending order (the order of creation for keyset pages).

    Each trait is stamped with the profile's `created_at` as the store stamps
    it, so a later message overrides it only if it is no older.
    """
    ids = _ids(n)
    now = datetime.now(UTC)
    trait_rows: list[dict[str, Any]] = _each({} if traits is None else traits, n)
    computed_rows: list[dict[str, Any]] = _each({} if computed is None else computed, n)
    times = [_utc(t) for t in _each(now if created_at is None else created_at, n)]
    survivors = _each(merged_into, n)
    rows = [
        {
            "id": ids[i],
            "merged_into": survivors[i],
            "traits": trait_rows[i],
            "meta": {key: {"at": stamp(times[i]), "source": "test"} for key in trait_rows[i]},
            "computed": computed_rows[i],
            "at": times[i],
        }
        for i in range(n)
    ]
    _write(db, Statement(_PROFILES, {"ws": workspace_id, "rows": _json(rows)}))
    return ids


def profile(
    db: Target,
    workspace_id: UUID,
    *,
    traits: dict[str, Any] | None = None,
    computed: dict[str, Any] | None = None,
    created_at: datetime | None = None,
    merged_into: UUID | None = None,
    identifiers: Iterable[tuple[str, str]] = (),
) -> UUID:
    """One profile, with the identities `identifiers` names as (kind, value) pairs."""
    [profile_id] = profiles(
        db,
        workspace_id,
        1,
        traits=traits,
        computed=computed,
        created_at=created_at,
        merged_into=merged_into,
    )
    pairs = list(identifiers)
    if pairs:
        _identities(db, workspace_id, [(kind, value, profile_id) for kind, value in pairs])
    return profile_id


def identities(
    db: Target,
    workspace_id: UUID,
    profile_ids: Sequence[UUID],
    *,
    kind: str = "email",
    value: Callable[[int], str] | None = None,
) -> list[Identifier]:
    """One identity of `kind` for each profile; unique values unless `value` gives them."""
    values = [value(i) if value else _unique_value(kind) for i in range(len(profile_ids))]
    _identities(db, workspace_id, [(kind, v, p) for v, p in zip(values, profile_ids, strict=True)])
    return [Identifier(kind, v) for v in values]


def identity(
    db: Target, workspace_id: UUID, profile_id: UUID, kind: str = "email", value: str | None = None
) -> Identifier:
    found = value if value is not None else _unique_value(kind)
    _identities(db, workspace_id, [(kind, found, profile_id)])
    return Identifier(kind, found)


def event_partitions(db: Target, months: Iterable[date]) -> None:
    """The events partitions of these months (any day of a month names it), if missing."""
    firsts = sorted({date(m.year, m.month, 1) for m in months})
    _write(db, Statement(_PARTITIONS, {"months": array_literal(firsts)}))


def events(
    db: Target,
    workspace_id: UUID,
    n: int,
    *,
    profile_id: PerRow[UUID],
    name: PerRow[str | None] = "Test Event",
    timestamp: PerRow[datetime] | None = None,
    properties: PerRow[dict[str, Any]] | None = None,
    context: PerRow[dict[str, Any]] | None = None,
    type: PerRow[str] = "track",  # noqa: A002 - the column's name
) -> list[UUID]:
    """`n` events, received when they happened, each with its own message id.

    Makes the monthly partitions they fall in first, as ingest does. The
    profiles need not exist: events have no foreign key to them.
    """
    ids = _ids(n)
    now = datetime.now(UTC)
    times = [_utc(t) for t in _each(now if timestamp is None else timestamp, n)]
    owners, names, kinds = _each(profile_id, n), _each(name, n), _each(type, n)
    props: list[dict[str, Any]] = _each({} if properties is None else properties, n)
    contexts: list[dict[str, Any]] = _each({} if context is None else context, n)
    rows = [
        {
            "id": ids[i],
            "ts": times[i],
            "pid": owners[i],
            "type": kinds[i],
            "name": names[i],
            "mid": ids[i].hex,
            "props": props[i],
            "ctx": contexts[i],
        }
        for i in range(n)
    ]
    months = sorted({date(t.year, t.month, 1) for t in times})
    _write(
        db,
        Statement(_PARTITIONS, {"months": array_literal(months)}),
        Statement(_EVENTS, {"ws": workspace_id, "rows": _json(rows)}),
    )
    return ids


def event(
    db: Target,
    workspace_id: UUID,
    profile_id: UUID,
    *,
    name: str | None = "Test Event",
    timestamp: datetime | None = None,
    properties: dict[str, Any] | None = None,
    type: str = "track",  # noqa: A002 - the column's name
) -> UUID:
    [event_id] = events(
        db,
        workspace_id,
        1,
        profile_id=profile_id,
        name=name,
        timestamp=timestamp,
        properties=properties,
        type=type,
    )
    return event_id


def event_message_ids(db: Target, workspace_id: UUID, message_ids: Sequence[str]) -> None:
    """Message ids marked as already ingested."""
    _write(db, Statement(_MESSAGE_IDS, {"ws": workspace_id, "ids": _json(list(message_ids))}))


def identity_conflict(
    db: Target,
    workspace_id: UUID,
    *,
    held_by: UUID,
    claimed_by: UUID,
    kind: str = "user_id",
    value: str | None = None,
    rule: str | None = None,
    trigger: str = "test",
    created_at: datetime | None = None,
) -> UUID:
    """A recorded refusal: `claimed_by` was refused an identifier that `held_by` keeps."""
    conflict_id = new_id()
    params = {
        "ws": workspace_id,
        "id": conflict_id,
        "kind": kind,
        "value": value if value is not None else conflict_id.hex,
        "held": held_by,
        "claimed": claimed_by,
        "rule": rule if rule is not None else f"{kind}:max_values=1",
        "trigger": trigger,
        "at": _utc(created_at or datetime.now(UTC)),
    }
    _write(db, Statement(_CONFLICT, params))
    return conflict_id


def consent_record(
    db: Target,
    workspace_id: UUID,
    profile_id: UUID,
    *,
    status: str = "GRANTED",
    purpose: str = "newsletter",
    channel: str = "email",
    lawful_basis: str = "consent",
    source: str = "test",
    notice_version: str | None = None,
    recorded_at: datetime | None = None,
) -> UUID:
    """One entry of the consent ledger; the latest entry for a purpose and channel is in force."""
    record_id = new_id()
    params = {
        "ws": workspace_id,
        "id": record_id,
        "pid": profile_id,
        "purpose": purpose,
        "channel": channel,
        "status": status,
        "basis": lawful_basis,
        "source": source,
        "notice": notice_version,
        "actor": "test",
        "at": _utc(recorded_at or datetime.now(UTC)),
    }
    _write(db, Statement(_CONSENT, params))
    return record_id


def suppression(
    db: Target,
    workspace_id: UUID,
    *,
    digest: bytes,
    reason: str = "manual",
    identifier_kind: str = "email",
    channel: str = "*",
    purpose: str = "*",
    source: str = "test",
    created_at: datetime | None = None,
) -> bytes:
    """A suppression list entry for an identifier's keyed digest; returns the digest."""
    params = {
        "ws": workspace_id,
        "digest": digest,
        "kind": identifier_kind,
        "channel": channel,
        "purpose": purpose,
        "reason": reason,
        "source": source,
        "at": _utc(created_at or datetime.now(UTC)),
    }
    _write(db, Statement(_SUPPRESSION, params))
    return digest


def segment_members(
    db: Target,
    workspace_id: UUID,
    segment_id: UUID,
    profile_ids: Sequence[UUID],
    *,
    since: datetime | None = None,
) -> None:
    """Memberships as a segment's evaluation would have left them (the segment row need not exist)."""
    params = {
        "ws": workspace_id,
        "segment": segment_id,
        "ids": list(profile_ids),
        "at": _utc(since or datetime.now(UTC)),
    }
    _write(db, Statement(_SEGMENT_MEMBERS, params))


def restricted(
    db: Target, workspace_id: UUID, profile_ids: Sequence[UUID], *, at: datetime | None = None
) -> None:
    """Mark profiles as restricted (GDPR Art. 18) since `at`."""
    params = {"ws": workspace_id, "ids": list(profile_ids), "at": _utc(at or datetime.now(UTC))}
    _write(db, Statement(_RESTRICT, params))


def outbox_job(
    db: Target,
    job: Job | None = None,
    *,
    created_at: datetime | None = None,
    sent_at: datetime | None = None,
) -> UUID:
    """An outbox row for `job` (a no-op by default); unsent unless `sent_at` is given."""
    job = job or Job("noop")
    job_id = new_id()
    params = {
        "id": job_id,
        "actor": job.actor_name,
        "queue": job.queue_name,
        "args": _json(list(job.args)),
        "kwargs": _json(job.kwargs or {}),
        "options": _json({"delay_ms": job.delay_ms} if job.delay_ms else {}),
        "at": _utc(created_at or datetime.now(UTC)),
        "sent": _utc(sent_at) if sent_at else None,
    }
    _write(db, Statement(_OUTBOX, params))
    return job_id


def _identities(db: Target, workspace_id: UUID, rows: Sequence[tuple[str, str, UUID]]) -> None:
    data = [{"kind": kind, "value": value, "pid": pid} for kind, value, pid in rows]
    _write(db, Statement(_IDENTITIES, {"ws": workspace_id, "rows": _json(data)}))


def _write(db: Target, *statements: Statement) -> None:
    if isinstance(db, UnitOfWork):
        db.defer(*statements)
        return
    for statement in statements:
        db.execute(statement.sql, statement.params)


def _each(value: PerRow[T], n: int) -> list[T]:
    if callable(value):
        return [value(i) for i in range(n)]
    return [value] * n


def _ids(n: int) -> list[UUID]:
    make = id_supply(n)
    return sorted(make() for _ in range(n))


def _unique_value(kind: str) -> str:
    token = new_id().hex
    return f"{token}@example.com" if kind == "email" else token


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
