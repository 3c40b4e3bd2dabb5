"""The CDP's hot-path SQL: psycopg statements, run through `UnitOfWork.pipeline`, `fetch`, `defer`.

- Reads of profiles, identities, events, groups, merges and conflicts. Each
  function takes many ids and answers with one statement, so the GraphQL
  layer's DataLoaders keep a page of profiles to a fixed number of queries.
- The profile store's statements: identifier locks, a batch's locked read and
  its one write, and merges.
- Segment ingest's claim of message ids, and upsertProfiles' idempotency keys.

The CDP's other SQL is SQLAlchemy Core, in `cdp.repository`.
"""

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson

from cdp.model import Identifier, Message
from domain.ids import new_id
from domain.sqlparams import array_literal, json_rows
from domain.uow import Statement, UnitOfWork


# Not frozen: bulk paths make one per item, and a frozen one is slower to build (bench/README.md).
@dataclass(slots=True)
class ProfileRow:
    id: UUID
    traits: dict[str, Any]
    trait_meta: dict[str, Any]
    computed: dict[str, Any]
    created_at: datetime
    updated_at: datetime


# Not frozen: bulk paths make one per item, and a frozen one is slower to build (bench/README.md).
@dataclass(slots=True)
class EventRow:
    id: UUID
    profile_id: UUID
    type: str
    name: str | None
    timestamp: datetime
    received_at: datetime
    message_id: str
    properties: dict[str, Any]
    context: dict[str, Any]


@dataclass(frozen=True)
class GroupRow:
    group_id: str
    traits: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class MergeRow:
    id: UUID
    source_profile_id: UUID
    target_profile_id: UUID
    rule: str
    trigger: str
    created_at: datetime


@dataclass(frozen=True)
class ConflictRow:
    id: UUID
    kind: str
    value: str
    held_by: UUID
    claimed_by: UUID
    rule: str
    trigger: str
    created_at: datetime


_PROFILE_COLUMNS = "p.id, p.traits, p.trait_meta, p.computed, p.created_at, p.updated_at"


def survivor(alias: str) -> str:
    """The id of the profile that `alias` now is: its own, or the one it was merged into.

    CASE, not coalesce(): under row-level security PostgreSQL 15 uses a join
    condition as an index condition only when it is leakproof, and it does not
    count coalesce() as such. Joined on coalesce(), a lookup by identifier read
    every profile of the workspace (bench/README.md).
    """
    return f"CASE WHEN {alias}.merged_into IS NULL THEN {alias}.id ELSE {alias}.merged_into END"


def _profile(row: Any) -> ProfileRow:
    return ProfileRow(
        row.id, row.traits, row.trait_meta, row.computed, row.created_at, row.updated_at
    )


async def profiles_by_id(uow: UnitOfWork, ids: Sequence[UUID]) -> dict[UUID, ProfileRow]:
    """Requested id -> the surviving profile (a merged-away id resolves to its survivor)."""
    # A probe per id (see `_PROFILES`): `q.id = ANY(ids)` lets a plan made
    # while the table was small read the whole workspace.
    rows = await uow.fetch(
        "SELECT d.id AS asked, p.* FROM unnest(%(ids)s::uuid[]) AS d(id) CROSS JOIN LATERAL ("  # noqa: S608 - constant SQL
        f"SELECT {_PROFILE_COLUMNS} FROM profiles q JOIN profiles p "
        f"ON p.workspace_id = q.workspace_id AND p.id = {survivor('q')} "
        "WHERE q.workspace_id = %(ws)s AND q.id = d.id OFFSET 0) AS p",
        {"ws": uow.workspace_id, "ids": array_literal(ids)},
    )
    return {row.asked: _profile(row) for row in rows}


@dataclass(frozen=True)
class EventPage:
    """Which of a profile's events a read wants: the latest `limit`, newest first."""

    limit: int
    name: str | None = None
    before: tuple[datetime, UUID] | None = None

    def sql(self, uow: UnitOfWork) -> tuple[str, dict[str, Any]]:
        """The statement, with `{profile}` where the profile's id goes, and its parameters."""
        conditions = ["e.workspace_id = %(ws)s"]
        params: dict[str, Any] = {"ws": uow.workspace_id, "limit": self.limit}
        if self.name is not None:
            conditions.append("e.name = %(name)s")
            params["name"] = self.name
        if self.before is not None:
            conditions.append("(e.timestamp, e.id) < (%(before_ts)s, %(before_id)s)")
            params["before_ts"], params["before_id"] = self.before
        return (
            f"SELECT {_EVENT_COLUMNS} FROM events e WHERE {' AND '.join(conditions)} "  # noqa: S608 - constant SQL
            "AND e.profile_id = {profile} ORDER BY e.timestamp DESC, e.id DESC LIMIT %(limit)s"
        ), params


_IDENTIFIER_HOLDER = (
    "FROM identities i JOIN profiles q ON q.workspace_id = i.workspace_id AND q.id = i.profile_id"
)
_IDENTIFIER_IS = "WHERE i.workspace_id = %(ws)s AND i.kind = %(kind)s AND i.value = %(value)s"


async def profile_by_identifier(
    uow: UnitOfWork,
    identifier: Identifier,
    *,
    before: Sequence[Statement] = (),
    events: EventPage | None = None,
) -> tuple[list[list[Any]], ProfileRow | None, list[EventRow] | None]:
    """The (surviving) profile that holds `identifier`, and a page of its `events` if asked.

    One round trip: `before` go ahead (a credential check), and their rows
    come first in the answer. The events are found through the identifier,
    since the profile's id is not known until the answer comes back. They are
    None when not asked, or when a merge between the two statements moved
    them to another profile (read them again by id then).
    """
    key = {"ws": uow.workspace_id, "kind": identifier.kind, "value": identifier.value}
    statements = [
        *before,
        Statement(
            f"SELECT {_PROFILE_COLUMNS} {_IDENTIFIER_HOLDER} "
            f"JOIN profiles p ON p.workspace_id = q.workspace_id AND p.id = {survivor('q')} "
            f"{_IDENTIFIER_IS}",
            key,
        ),
    ]
    if events is not None:
        sql, params = events.sql(uow)
        holder = f"(SELECT {survivor('q')} {_IDENTIFIER_HOLDER} {_IDENTIFIER_IS})"
        statements.append(Statement(sql.format(profile=holder), params | key))
    results = await uow.pipeline(*statements)
    earlier, rows = results[: len(before)], results[len(before)]
    profile = _profile(rows[0]) if rows else None
    page = None
    if events is not None and profile is not None:
        page = [_event(r) for r in results[-1]]
        if any(e.profile_id != profile.id for e in page):
            page = None
    return earlier, profile, page


# Each wanted identifier (a JSON record set of kind and value) with its owner.
# A record set, not expressions on JSON: row-level security lets only leakproof
# operators into an index condition, and `->>` is not one. LATERAL with LIMIT
# (which stops the planner from flattening it) keeps this an index probe per
# identifier whatever the statistics say; a misestimate on a fast-growing table
# would otherwise scan the workspace.
IDENTIFIER_OWNERS = (
    "SELECT q.kind, q.value, i.profile_id "
    "FROM json_to_recordset(%(wanted)s::json) AS q(kind text, value text) "
    "CROSS JOIN LATERAL (SELECT profile_id FROM identities WHERE workspace_id = %(ws)s "
    "AND kind = q.kind AND value = q.value LIMIT 1) AS i"
)


def wanted_identifiers(identifiers: Iterable[Identifier]) -> str:
    """The `wanted` parameter of IDENTIFIER_OWNERS."""
    return json_rows([{"kind": i.kind, "value": i.value} for i in identifiers])


async def profile_ids_by_identifier(
    uow: UnitOfWork, identifiers: Sequence[Identifier]
) -> dict[Identifier, UUID]:
    rows = await uow.fetch(
        IDENTIFIER_OWNERS,
        {"ws": uow.workspace_id, "wanted": wanted_identifiers(sorted(set(identifiers)))},
    )
    return {Identifier(r.kind, r.value): r.profile_id for r in rows}


async def list_profiles(
    uow: UnitOfWork,
    *,
    after: UUID | None,
    limit: int,
    trait: dict[str, Any] | None = None,
    identifier_kind: str | None = None,
) -> list[ProfileRow]:
    conditions = ["p.workspace_id = %(ws)s", "p.merged_into IS NULL"]
    params: dict[str, Any] = {"ws": uow.workspace_id, "limit": limit}
    if after is not None:
        conditions.append("p.id > %(after)s")
        params["after"] = after
    if trait:
        conditions.append("p.traits @> %(trait)s::jsonb")
        params["trait"] = orjson.dumps(trait).decode()
    if identifier_kind:
        conditions.append(
            "EXISTS (SELECT 1 FROM identities i WHERE i.workspace_id = p.workspace_id "
            "AND i.profile_id = p.id AND i.kind = %(kind)s)"
        )
        params["kind"] = identifier_kind
    rows = await uow.fetch(
        f"SELECT {_PROFILE_COLUMNS} FROM profiles p WHERE {' AND '.join(conditions)} "  # noqa: S608
        "ORDER BY p.id LIMIT %(limit)s",
        params,
    )
    return [_profile(row) for row in rows]


async def identities_of(
    uow: UnitOfWork, profile_ids: Sequence[UUID]
) -> dict[UUID, list[Identifier]]:
    rows = await uow.fetch(
        "SELECT p.id AS profile_id, i.kind, i.value FROM unnest(%(ids)s::uuid[]) AS p(id) "
        "CROSS JOIN LATERAL (SELECT kind, value FROM identities WHERE workspace_id = %(ws)s "
        "AND profile_id = p.id OFFSET 0) AS i ORDER BY i.kind, i.value",
        {"ws": uow.workspace_id, "ids": array_literal(profile_ids)},
    )
    found: dict[UUID, list[Identifier]] = defaultdict(list)
    for row in rows:
        found[row.profile_id].append(Identifier(row.kind, row.value))
    return found


async def recent_events(
    uow: UnitOfWork, profile_ids: Sequence[UUID], page: EventPage
) -> dict[UUID, list[EventRow]]:
    """Each profile's page of events, in one statement."""
    sql, params = page.sql(uow)
    if len(profile_ids) == 1:
        # One profile, the usual case, by a plain parameter: with an array the
        # planner preferred a plan made for the actual array every time, and
        # planning cost more than running the statement (bench/README.md).
        params["id"] = profile_ids[0]
        rows = await uow.fetch(sql.format(profile="%(id)s"), params)
    else:
        params["ids"] = array_literal(profile_ids)
        rows = await uow.fetch(
            "SELECT e.* FROM unnest(%(ids)s::uuid[]) AS p(id) "  # noqa: S608 - constant SQL
            f"CROSS JOIN LATERAL ({sql.format(profile='p.id')}) AS e",
            params,
        )
    found: dict[UUID, list[EventRow]] = defaultdict(list)
    for r in rows:
        found[r.profile_id].append(_event(r))
    return found


async def events_by_id(uow: UnitOfWork, ids: Sequence[UUID]) -> dict[UUID, EventRow]:
    rows = await uow.fetch(
        f"SELECT {_EVENT_COLUMNS} FROM events "  # noqa: S608 - constant SQL
        "WHERE workspace_id = %(ws)s AND id = ANY(%(ids)s::uuid[])",
        {"ws": uow.workspace_id, "ids": array_literal(ids)},
    )
    return {r.id: _event(r) for r in rows}


async def groups_of(uow: UnitOfWork, profile_ids: Sequence[UUID]) -> dict[UUID, list[GroupRow]]:
    """The groups each profile belongs to, by group id."""
    rows = await uow.fetch(
        "SELECT p.id AS profile_id, g.group_id, g.traits, g.updated_at "
        "FROM unnest(%(ids)s::uuid[]) AS p(id) CROSS JOIN LATERAL (SELECT group_id, traits, "
        "updated_at FROM profile_groups WHERE workspace_id = %(ws)s AND profile_id = p.id "
        "OFFSET 0) AS g ORDER BY g.group_id",
        {"ws": uow.workspace_id, "ids": array_literal(profile_ids)},
    )
    found: dict[UUID, list[GroupRow]] = defaultdict(list)
    for r in rows:
        found[r.profile_id].append(GroupRow(r.group_id, r.traits, r.updated_at))
    return found


async def merges_of(uow: UnitOfWork, profile_ids: Sequence[UUID]) -> dict[UUID, list[MergeRow]]:
    """Merges into each profile, oldest first."""
    rows = await uow.fetch(
        "SELECT id, source_profile_id, target_profile_id, rule, trigger, created_at "
        "FROM profile_merges WHERE workspace_id = %(ws)s "
        "AND target_profile_id = ANY(%(ids)s::uuid[]) ORDER BY created_at, id",
        {"ws": uow.workspace_id, "ids": array_literal(profile_ids)},
    )
    found: dict[UUID, list[MergeRow]] = defaultdict(list)
    for r in rows:
        found[r.target_profile_id].append(
            MergeRow(
                r.id, r.source_profile_id, r.target_profile_id, r.rule, r.trigger, r.created_at
            )
        )
    return found


_CONFLICT_COLUMNS = "id, kind, value, held_by, claimed_by, rule, trigger, created_at"
_EVENT_COLUMNS = (
    "id, profile_id, type, name, timestamp, received_at, message_id, properties, context"
)


def _event(r: Any) -> EventRow:
    return EventRow(
        r.id, r.profile_id, r.type, r.name, r.timestamp, r.received_at, r.message_id,
        r.properties, r.context,
    )  # fmt: skip


def _conflict(r: Any) -> ConflictRow:
    return ConflictRow(
        r.id, r.kind, r.value, r.held_by, r.claimed_by, r.rule, r.trigger, r.created_at
    )


async def conflicts_of(
    uow: UnitOfWork, profile_ids: Sequence[UUID]
) -> dict[UUID, list[ConflictRow]]:
    # One index probe per id and side, joined by UNION (which also drops a
    # conflict found from both sides). With `held_by = ANY(ids) OR claimed_by =
    # ANY(ids)`, the plan prepared while the table was empty read every
    # conflict of the workspace and filtered them.
    probe = (
        "SELECT c.* FROM unnest(%(ids)s::uuid[]) AS d(id) CROSS JOIN LATERAL ("  # noqa: S608 - constant SQL
        f"SELECT {_CONFLICT_COLUMNS} FROM identity_conflicts "
        "WHERE workspace_id = %(ws)s AND {side} = d.id OFFSET 0) AS c"
    )
    rows = await uow.fetch(
        f"{probe.format(side='held_by')} UNION {probe.format(side='claimed_by')} "
        "ORDER BY created_at, id",
        {"ws": uow.workspace_id, "ids": array_literal(profile_ids)},
    )
    found: dict[UUID, list[ConflictRow]] = defaultdict(list)
    for r in rows:
        row = _conflict(r)
        found[r.held_by].append(row)
        if r.claimed_by != r.held_by:
            found[r.claimed_by].append(row)
    return found


async def list_conflicts(uow: UnitOfWork, *, after: UUID | None, limit: int) -> list[ConflictRow]:
    rows = await uow.fetch(
        f"SELECT {_CONFLICT_COLUMNS} "  # noqa: S608 - constant SQL
        "FROM identity_conflicts WHERE workspace_id = %(ws)s "
        "AND (%(after)s::uuid IS NULL OR id > %(after)s::uuid) ORDER BY id LIMIT %(limit)s",
        {"ws": uow.workspace_id, "after": after, "limit": limit},
    )
    return [_conflict(r) for r in rows]


async def list_conflicts_by_id(uow: UnitOfWork, ids: Sequence[UUID]) -> dict[UUID, ConflictRow]:
    rows = await uow.fetch(
        f"SELECT {_CONFLICT_COLUMNS} "  # noqa: S608 - constant SQL
        "FROM identity_conflicts WHERE workspace_id = %(ws)s AND id = ANY(%(ids)s::uuid[])",
        {"ws": uow.workspace_id, "ids": array_literal(ids)},
    )
    return {r.id: _conflict(r) for r in rows}


async def merged_ids(uow: UnitOfWork, survivors: Sequence[UUID]) -> dict[UUID, list[UUID]]:
    """Each survivor with every profile id merged into it, survivor first."""
    rows = await uow.fetch(
        "SELECT s.id AS survivor, m.id FROM unnest(%(ids)s::uuid[]) AS s(id) "
        "CROSS JOIN LATERAL (SELECT id FROM profiles WHERE workspace_id = %(ws)s "
        "AND merged_into = s.id OFFSET 0) AS m ORDER BY m.id",
        {"ws": uow.workspace_id, "ids": array_literal(survivors)},
    )
    found: dict[UUID, list[UUID]] = {s: [s] for s in survivors}
    for row in rows:
        found[row.survivor].append(row.id)
    return found


async def current_emails(uow: UnitOfWork, profile_ids: Sequence[UUID]) -> dict[UUID, str]:
    """The address each profile (by the id asked, merged away or not) is reached at now: the
    first, in code-point order, of the email identities of its survivor and of every profile
    merged into it. An erased profile, or one with no email, is left out."""
    rows = await uow.fetch(
        "SELECT d.id AS asked, e.value FROM unnest(%(ids)s::uuid[]) AS d(id) "  # noqa: S608 - constant SQL
        "CROSS JOIN LATERAL (SELECT p.id FROM profiles q JOIN profiles p "
        f"ON p.workspace_id = q.workspace_id AND p.id = {survivor('q')} "
        "WHERE q.workspace_id = %(ws)s AND q.id = d.id OFFSET 0) AS s "
        'CROSS JOIN LATERAL (SELECT min(i.value COLLATE "C") AS value FROM ('
        " SELECT s.id AS id UNION ALL SELECT m.id FROM profiles m "
        " WHERE m.workspace_id = %(ws)s AND m.merged_into = s.id) AS o "
        " JOIN identities i ON i.workspace_id = %(ws)s AND i.profile_id = o.id "
        " AND i.kind = 'email') AS e WHERE e.value IS NOT NULL",
        {"ws": uow.workspace_id, "ids": array_literal(sorted(set(profile_ids)))},
    )
    return {row.asked: row.value for row in rows}


# The profile store's statements. `cdp.profile_store` runs them: the locks and
# the reads of a batch in one round trip, its write in another.


def lock_key(workspace_id: UUID, identifier: Identifier) -> int:
    return _lock_key(workspace_id.bytes, identifier)


def _lock_key(workspace: bytes, identifier: Identifier) -> int:
    raw = workspace + identifier.kind.encode() + b"\0" + identifier.value.encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)


def _workspace_lock_key(workspace: bytes) -> int:
    digest = hashlib.blake2b(workspace + b"\0workspace", digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# A transaction locks its identifiers one by one while they are few, under a
# shared lock of the workspace; past `MAX_IDENTIFIER_LOCKS` it takes the
# workspace's lock alone, exclusively. Either way a transaction holds a bounded
# number of locks, below the server's shared lock table
# (max_locks_per_transaction x max_connections), which a batch of thousands of
# identifiers would otherwise fill for every workspace. Any two transactions
# that may share an identifier still exclude each other: two small ones
# through the identifier, a large one through the workspace. The limit lets a
# full upsertProfiles call (1,000 items of an email and a user id) and a full
# ingest group keep their own locks, so that they do not serialize the
# workspace (bench/README.md).
MAX_IDENTIFIER_LOCKS = 2000
_LOCK = (
    "WITH w AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(%(workspace)s)) "
    "SELECT pg_advisory_xact_lock(k) FROM w, unnest(%(keys)s::bigint[]) AS k"
)
_LOCK_WORKSPACE = "SELECT pg_advisory_xact_lock(%(workspace)s)"


def lock_identifiers(workspace_id: UUID, identifiers: set[Identifier]) -> Statement:
    """The transaction's advisory locks on `identifiers`, taken in sorted order."""
    workspace = workspace_id.bytes  # a computed property: once, not per identifier
    whole = _workspace_lock_key(workspace)
    if len(identifiers) > MAX_IDENTIFIER_LOCKS:
        return Statement(_LOCK_WORKSPACE, {"workspace": whole})
    keys = sorted({_lock_key(workspace, i) for i in identifiers})
    return Statement(_LOCK, {"workspace": whole, "keys": array_literal(keys)})


_MERGE_RULES = "SELECT kind, max_values, priority FROM merge_rules WHERE workspace_id = %(ws)s"


def read_merge_rules(ws: UUID) -> Statement:
    """The workspace's own merge rules: kind, max_values, priority."""
    return Statement(_MERGE_RULES, {"ws": ws})


# Locks the profiles and reads them, one primary-key probe per id, in the
# order of `{ids}` (sorted, so batches never deadlock). `merged_into` tells a
# profile merged away while this waited for it. Written as `id = ANY(array)`,
# the plan settled on while the table was small, and kept by a prepared
# statement as it grew, scanned the whole workspace and filtered it by the
# array (bench/README.md).
# A lateral probe cannot be planned that way, whatever the statistics say.
_PROFILES = (
    "SELECT p.* FROM unnest({ids}) AS d(id) CROSS JOIN LATERAL ("
    "SELECT p.id, p.traits, p.trait_meta, p.computed, p.merged_into, "
    "p.restricted_at IS NOT NULL AS restricted FROM profiles p "
    "WHERE p.workspace_id = %(ws)s AND p.id = d.id FOR UPDATE) AS p"
)
# What the profiles that `{ids}` (`AS d(profile_id)`) gives hold. Read in a
# statement of its own, after the lock: it then sees what a batch that held
# one of the profiles committed while this waited, such as a user id attached
# through another identifier (a join in the locking statement would read the
# identities as they were before the wait). Anonymous ids can be many and
# never limit a merge, so they are not loaded. OFFSET 0 keeps it an index
# probe per profile; written as a join it cost far more (bench/README.md).
_HELD_BY = (
    "SELECT h.profile_id, h.kind, h.value FROM {ids} "
    "CROSS JOIN LATERAL (SELECT i.profile_id, i.kind, i.value FROM identities i "
    "WHERE i.workspace_id = %(ws)s AND i.profile_id = d.profile_id "
    "AND i.kind <> 'anonymous_id' OFFSET 0) AS h"
)
_HELD = _HELD_BY.format(ids="unnest(%(ids)s::uuid[]) AS d(profile_id)")
_PROFILES_BY_ID = _PROFILES.format(ids="%(ids)s::uuid[]")

# The transaction-local setting that hands the ids locked by `OWNERS_AND_PROFILES`
# to the statement after it, so that the owners are probed once, not twice.
_LOCKED_SETTING = "cdp.locked_profiles"

# On one snapshot, taken once the identifiers are locked: who owns each wanted
# identifier (rows with a kind), and the owners' profiles, locked in id order
# (rows without). The owners need no second look after the lock: no other
# batch can attach an identifier this one has locked, and one that merges an
# owner away or erases it changes the owner's row, which the lock then reads
# as it is now (`merged_into` set, or the row gone), and the read is retried.
# The final condition is there to make the statement run `kept`.
OWNERS_AND_PROFILES = (
    "WITH o AS MATERIALIZED (" + IDENTIFIER_OWNERS + "), "  # noqa: S608 - constant SQL
    "locked AS MATERIALIZED ("
    + _PROFILES.format(ids="ARRAY(SELECT DISTINCT o.profile_id FROM o ORDER BY 1)")
    + "), kept AS (SELECT set_config('"
    + _LOCKED_SETTING
    + "', coalesce(string_agg(l.id::text, ','), ''), true) AS ids FROM locked l) "
    "SELECT l.*, NULL::text AS kind, NULL::text AS value FROM locked l UNION ALL "
    "SELECT o.profile_id, NULL, NULL, NULL, NULL, NULL, o.kind, o.value FROM o "
    "WHERE (SELECT k.ids FROM kept k) IS NOT NULL"
)
# What the profiles just locked hold, read after the lock (see `_HELD_BY`).
_HELD_BY_LOCKED = _HELD_BY.format(
    ids="unnest(string_to_array(current_setting('"
    + _LOCKED_SETTING
    + "'), ',')::uuid[]) AS d(profile_id)"
)


def read_profiles(ws: UUID, profile_ids: Sequence[UUID]) -> tuple[Statement, Statement]:
    """Lock and read the profiles (in id order), then what they hold; run in this order."""
    params = {"ws": ws, "ids": array_literal(sorted(set(profile_ids)))}
    return Statement(_PROFILES_BY_ID, params), Statement(_HELD, params)


def read_owners_and_profiles(ws: UUID, wanted: Iterable[Identifier]) -> tuple[Statement, Statement]:
    """Who owns each of `wanted` and their locked profiles, then what those hold; in this order.

    Run after `lock_identifiers` on the same identifiers.
    """
    probe = {"ws": ws, "wanted": wanted_identifiers(wanted)}
    # Prepared: each read probes an index per identifier or id, which a generic
    # plan does as well as a custom one, and planning it every time is not free
    # (bench/README.md).
    return Statement(OWNERS_AND_PROFILES, probe), Statement(_HELD_BY_LOCKED, {"ws": ws})


# Server-recorded events (`cdp.server_events`): each asked profile's survivor,
# found on the statement's snapshot, then the survivors locked FOR SHARE in id
# order, which waits for a merge or an erasure under way (both lock the
# profiles FOR UPDATE first). `moved` tells a survivor merged away while this
# waited; an asked profile missing from the answer is gone.
_LOCK_SURVIVORS = (
    "WITH s AS MATERIALIZED (SELECT d.id AS asked, "  # noqa: S608 - constant SQL
    + survivor("q")
    + " AS id FROM unnest(%(ids)s::uuid[]) AS d(id) CROSS JOIN LATERAL ("
    "SELECT q.id, q.merged_into FROM profiles q WHERE q.workspace_id = %(ws)s AND q.id = d.id "
    "OFFSET 0) AS q), "
    "locked AS MATERIALIZED (SELECT p.* FROM unnest(ARRAY(SELECT DISTINCT s.id FROM s ORDER BY 1)) "
    "AS d(id) CROSS JOIN LATERAL (SELECT p.id, p.merged_into FROM profiles p "
    "WHERE p.workspace_id = %(ws)s AND p.id = d.id FOR SHARE) AS p) "
    "SELECT s.asked, s.id, l.merged_into IS NOT NULL AS moved FROM s JOIN locked l ON l.id = s.id"
)


def lock_survivors(ws: UUID, profile_ids: Sequence[UUID]) -> Statement:
    """Lock the survivors of `profile_ids` against merges: rows (asked, id, moved)."""
    return Statement(_LOCK_SURVIVORS, {"ws": ws, "ids": array_literal(sorted(set(profile_ids)))})


def ensure_partitions(events: list[tuple[UUID, Message]]) -> Statement:
    """Make the monthly event partitions that `events` fall in, if missing."""
    # No process-wide cache: a partition made in a transaction that rolls back is
    # gone, and the function's own existence check is cheap.
    # Message times are UTC already (cdp.ingest_messages makes them so).
    months = sorted({date(t.year, t.month, 1) for t in {m.timestamp for _, m in events}})
    return Statement(
        "SELECT cdp_ensure_event_partition(m) FROM unnest(%(months)s::date[]) AS m",
        {"months": array_literal(months)},
    )


def _group_merge(ties: str) -> str:
    """ON CONFLICT's SET for a profile's group row `g`: each trait keeps its latest value.

    A trait of the incoming row replaces the stored one when its event time is
    later, or equal and `ties` is `<=` (the incoming row wins ties); `<` keeps
    the stored value on a tie. `updated_at` is the latest group call's time.
    """
    stored = "coalesce(g.trait_meta -> n.key ->> 'at', '')"
    incoming_trait = f"{stored} {ties} coalesce(excluded.trait_meta -> n.key ->> 'at', '')"
    incoming_meta = f"{stored} {ties} coalesce(n.value ->> 'at', '')"
    return (
        "traits = g.traits || coalesce((SELECT jsonb_object_agg(n.key, n.value) "  # noqa: S608 - constant SQL
        f"FROM jsonb_each(excluded.traits) AS n WHERE {incoming_trait}), '{{}}'::jsonb), "
        "trait_meta = g.trait_meta || coalesce((SELECT jsonb_object_agg(n.key, n.value) "
        f"FROM jsonb_each(excluded.trait_meta) AS n WHERE {incoming_meta}), '{{}}'::jsonb), "
        "created_at = least(g.created_at, excluded.created_at), "
        "updated_at = greatest(g.updated_at, excluded.updated_at)"
    )


_GROUP_KEY = "ON CONFLICT (workspace_id, profile_id, group_id) DO UPDATE SET "
_GROUP_COLUMNS = (
    "profile_groups AS g (workspace_id, profile_id, group_id, traits, trait_meta, created_at, "
    "updated_at)"
)

# Every write of a batch in one statement: data-modifying CTEs all run to
# completion, on one snapshot, whether or not the final SELECT reads them, and
# none of them reads what another writes. One round trip instead of five is most
# of what a batch costs outside PostgreSQL itself. It answers with the creation
# time of the profiles it updated: the rest of each written row is known here.
# Identities are plainly inserted: the batch attaches only identifiers that it
# has locked and found unowned after the lock, so none can exist by now (an
# ON CONFLICT clause has a cost per row: bench/README.md).
_WRITE_BATCH = (
    "WITH new_profiles AS ("  # noqa: S608 - constant SQL
    " INSERT INTO profiles (workspace_id, id, traits, trait_meta, computed, created_at, updated_at)"
    " SELECT %(ws)s, r.id, r.t, r.m, r.c, %(now)s, %(now)s"
    " FROM jsonb_to_recordset(%(created)s::jsonb) AS r(id uuid, t jsonb, m jsonb, c jsonb)),"
    " new_identities AS ("
    " INSERT INTO identities (workspace_id, kind, value, profile_id, created_at)"
    " SELECT %(ws)s, r.kind, r.value, r.pid, %(now)s"
    " FROM jsonb_to_recordset(%(identities)s::jsonb) AS r(kind text, value text, pid uuid)),"
    " new_conflicts AS ("
    " INSERT INTO identity_conflicts (workspace_id, id, kind, value, held_by, claimed_by, rule,"
    " trigger, created_at)"
    " SELECT %(ws)s, r.id, r.kind, r.value, r.held, r.claimed, r.rule, r.trig, %(now)s"
    " FROM jsonb_to_recordset(%(conflicts)s::jsonb) AS r(id uuid, kind text, value text,"
    " held uuid, claimed uuid, rule text, trig text)),"
    " new_events AS ("
    " INSERT INTO events (workspace_id, id, timestamp, profile_id, type, name, message_id,"
    " received_at, properties, context)"
    " SELECT %(ws)s, r.id, r.ts, r.pid, r.type, r.name, r.mid, r.rat, r.props, r.ctx"
    " FROM jsonb_to_recordset(%(events)s::jsonb) AS r(id uuid, ts timestamptz, pid uuid,"
    " type text, name text, mid text, rat timestamptz, props jsonb, ctx jsonb)),"
    # One row per profile and group, folded in memory; a later call wins per trait.
    " new_groups AS ("
    " INSERT INTO " + _GROUP_COLUMNS + " SELECT %(ws)s, r.pid, r.gid, r.t, r.m, %(now)s, r.at"
    " FROM jsonb_to_recordset(%(groups)s::jsonb) AS r(pid uuid, gid text, t jsonb, m jsonb,"
    " at timestamptz) " + _GROUP_KEY + _group_merge("<=") + "),"
    # Profiles are updated by primary key, one by one (see migration 0005).
    " updated AS (SELECT * FROM cdp_update_profiles(%(ws)s, %(updated)s::jsonb, %(now)s))"
    " SELECT id, created_at FROM updated"
)


def write_batch(
    ws: UUID,
    now: datetime,
    *,
    created: str,
    identities: str,
    conflicts: str,
    events: str,
    groups: str,
    updated: str,
) -> Statement:
    """A batch's one write; each argument is a JSON array of rows shaped as its record set.

    It answers with `id, created_at` of each profile in `updated`.
    """
    return Statement(
        _WRITE_BATCH,
        {
            "ws": ws,
            "now": now,
            "created": created,
            "identities": identities,
            "conflicts": conflicts,
            "events": events,
            "groups": groups,
            "updated": updated,
        },
    )


_PAIRS = "jsonb_to_recordset(CAST(%(pairs)s AS jsonb)) AS m(src uuid, tgt uuid)"

# A merge moves the sources' groups to their target. The groups of all the
# sources of one target are folded first (an INSERT may not reach one row
# twice): per trait, the value with the latest event time. A group the target
# has too is then merged as a later call would be, except that the target
# keeps a trait whose time is the same.
_MOVE_GROUPS = (
    "WITH moved AS (DELETE FROM profile_groups d "  # noqa: S608 - constant SQL
    "USING " + _PAIRS + " "
    "WHERE d.workspace_id = %(ws)s AND d.profile_id = m.src "
    "RETURNING m.tgt, d.group_id, d.traits, d.trait_meta, d.created_at, d.updated_at), "
    "latest AS (SELECT DISTINCT ON (v.tgt, v.group_id, t.key) v.tgt, v.group_id, t.key, "
    "t.value, v.trait_meta -> t.key AS meta FROM moved v CROSS JOIN LATERAL jsonb_each(v.traits) t "
    "ORDER BY v.tgt, v.group_id, t.key, v.trait_meta -> t.key ->> 'at' DESC NULLS LAST), "
    "folded AS (SELECT v.tgt, v.group_id, min(v.created_at) AS created_at, "
    "max(v.updated_at) AS updated_at FROM moved v GROUP BY v.tgt, v.group_id) "
    "INSERT INTO " + _GROUP_COLUMNS + " SELECT %(ws)s, f.tgt, f.group_id, "
    "coalesce((SELECT jsonb_object_agg(l.key, l.value) FROM latest l "
    "WHERE l.tgt = f.tgt AND l.group_id = f.group_id), '{}'::jsonb), "
    "coalesce((SELECT jsonb_object_agg(l.key, l.meta) FROM latest l "
    "WHERE l.tgt = f.tgt AND l.group_id = f.group_id AND l.meta IS NOT NULL), '{}'::jsonb), "
    "f.created_at, f.updated_at FROM folded f " + _GROUP_KEY + _group_merge("<")
)

_MOVE_IDENTITIES = (
    "UPDATE identities i SET profile_id = m.tgt FROM " + _PAIRS + " "  # noqa: S608 - constant SQL
    "WHERE i.workspace_id = %(ws)s AND i.profile_id = m.src"
)
_MOVE_EVENTS = (
    "UPDATE events e SET profile_id = m.tgt FROM " + _PAIRS + " "  # noqa: S608 - constant SQL
    "WHERE e.workspace_id = %(ws)s AND e.profile_id = m.src"
)
# Earlier merges into a source now point at its target: one hop to the survivor.
_MERGE_AWAY = (
    "UPDATE profiles p SET merged_into = m.tgt, updated_at = now() FROM " + _PAIRS + " "  # noqa: S608 - constant SQL
    "WHERE p.workspace_id = %(ws)s AND (p.merged_into = m.src OR p.id = m.src)"
)
_EMPTY_SOURCES = (
    "UPDATE profiles SET traits = '{}'::jsonb, trait_meta = '{}'::jsonb, "
    "computed = '{}'::jsonb WHERE workspace_id = %(ws)s AND id = ANY(CAST(%(src)s AS uuid[]))"
)
_RECORD_MERGES = (
    "INSERT INTO profile_merges (workspace_id, id, source_profile_id, target_profile_id, "
    "rule, trigger, created_at) SELECT %(ws)s, r.id, r.src, r.tgt, r.rule, r.trig, now() "
    "FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) "
    "AS r(id uuid, src uuid, tgt uuid, rule text, trig text)"
)


async def merge(
    uow: UnitOfWork,
    *,
    sources: list[UUID],
    targets: list[UUID],
    rules: list[str],
    triggers: list[str],
) -> None:
    """Point everything of each source at its target, and record the merges."""
    pairs_json = json_rows([{"src": a, "tgt": b} for a, b in zip(sources, targets, strict=True)])
    params = {"ws": uow.workspace_id, "pairs": pairs_json, "src": array_literal(sources)}
    for sql in (_MOVE_IDENTITIES, _MOVE_EVENTS, _MOVE_GROUPS, _MERGE_AWAY, _EMPTY_SOURCES):
        await uow.pipeline(Statement(sql, params))
    await uow.pipeline(
        Statement(
            _RECORD_MERGES,
            {
                "ws": uow.workspace_id,
                "rows": json_rows(
                    [
                        {"id": new_id(), "src": a, "tgt": b, "rule": r, "trig": t}
                        for a, b, r, t in zip(sources, targets, rules, triggers, strict=True)
                    ]
                ),
            },
        )
    )


# Segment ingest: a message id the workspace has seen is not stored twice.
_CLAIM_MESSAGE_IDS = (
    "INSERT INTO event_message_ids (workspace_id, message_id) "
    "SELECT %(ws)s, m FROM jsonb_array_elements_text(%(ids)s::jsonb) AS m "
    "ON CONFLICT DO NOTHING RETURNING message_id"
)


def claim_message_ids(ws: UUID, message_ids: Sequence[str]) -> Statement:
    """Claim the message ids; answers with those not seen before (`message_id`)."""
    return Statement(_CLAIM_MESSAGE_IDS, {"ws": ws, "ids": json_rows(message_ids)})


# upsertProfiles' idempotency keys.
_CLAIM_IDEMPOTENCY_KEY = (
    "INSERT INTO idempotency_keys (workspace_id, key, operation, request_hash, response) "
    "VALUES (%(ws)s, %(key)s, 'upsertProfiles', %(hash)s, '{}'::jsonb) "
    "ON CONFLICT DO NOTHING RETURNING key"
)
_IDEMPOTENCY_KEY = (
    "SELECT operation, request_hash, response FROM idempotency_keys "
    "WHERE workspace_id = %(ws)s AND key = %(key)s"
)
_IDEMPOTENT_RESPONSE = (
    "UPDATE idempotency_keys SET response = CAST(%(response)s AS jsonb) "
    "WHERE workspace_id = %(ws)s AND key = %(key)s"
)


@dataclass(frozen=True)
class IdempotencyKey:
    operation: str
    request_hash: bytes
    response: dict[str, Any]


async def claim_idempotency_key(uow: UnitOfWork, key: str, request_hash: bytes) -> bool:
    """Claim `key` for an upsertProfiles call; False when it was used before."""
    claimed = await uow.fetch(
        _CLAIM_IDEMPOTENCY_KEY, {"ws": uow.workspace_id, "key": key, "hash": request_hash}
    )
    return bool(claimed)


async def idempotency_key(uow: UnitOfWork, key: str) -> IdempotencyKey:
    """A used key: the call that used it and its stored response."""
    [row] = await uow.fetch(_IDEMPOTENCY_KEY, {"ws": uow.workspace_id, "key": key})
    return IdempotencyKey(row.operation, bytes(row.request_hash), row.response)


async def store_idempotent_response(uow: UnitOfWork, key: str, response: str) -> None:
    """Keep the response (a JSON document) of the call that claimed `key`."""
    await uow.fetch(
        _IDEMPOTENT_RESPONSE, {"ws": uow.workspace_id, "key": key, "response": response}
    )
