"""The profile store: lock, load, resolve, write and merge profiles, set-based.

Order of work inside the caller's transaction:
1. a transaction-scoped advisory lock is taken on every identifier, in sorted
   order, so two batches that share an identifier serialize and none deadlock;
2. one query finds who owns each identifier; the involved profiles are
   locked (in id order) and read;
3. the resolver decides, in memory and in event-time order;
4. new profiles, identities, merges, conflicts, events and folded traits are
   written with one statement each.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text

from cdp import queries
from cdp.model import Identifier, Message
from cdp.resolution import KindRule, Resolver, Rules
from cdp.traits import ProfileState, stamp
from consent import audit
from domain.ids import id_supply, new_id, new_ids_text
from domain.sqlparams import array_literal, json_rows
from domain.uow import Statement, UnitOfWork

IDENTITY_RESOLUTION = audit.Actor.system("identity-resolution")


# Not frozen: bulk paths make one per item, and a frozen one is slower to build (bench/README.md).
@dataclass(slots=True)
class Operation:
    """One thing that happened to one person: identifiers, maybe traits, maybe an event."""

    identifiers: tuple[Identifier, ...]
    trigger: str
    at: datetime
    traits: dict[str, Any] | None = None
    trait_source: str = "identify"
    event: Message | None = None
    # An alias's previousId may be a user id or an anonymous id: whichever is known.
    either: tuple[Identifier, ...] = ()
    # A Segment group call: (groupId, the group's traits).
    group: tuple[str, dict[str, Any]] | None = None


@dataclass
class Outcome:
    profile_ids: list[UUID] = field(default_factory=list)
    # Each profile in profile_ids as this batch wrote it, so that a caller can
    # answer without reading them back.
    profiles: dict[UUID, queries.ProfileRow] = field(default_factory=dict)


def lock_key(workspace_id: UUID, identifier: Identifier) -> int:
    return _lock_key(workspace_id.bytes, identifier)


def _lock_key(workspace: bytes, identifier: Identifier) -> int:
    raw = workspace + identifier.kind.encode() + b"\0" + identifier.value.encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)


_MERGE_RULES = "SELECT kind, max_values, priority FROM merge_rules WHERE workspace_id = %(ws)s"

# A transaction locks its identifiers one by one while they are few, under a
# shared lock of the workspace; past `MAX_IDENTIFIER_LOCKS` it takes the
# workspace's lock alone, exclusively. Either way a transaction holds a bounded
# number of locks, far below the server's shared lock table
# (max_locks_per_transaction x max_connections), which a batch of thousands of
# identifiers would otherwise fill for every workspace. Any two transactions
# that may share an identifier still exclude each other: two small ones
# through the identifier, a large one through the workspace.
MAX_IDENTIFIER_LOCKS = 1000
_LOCK = (
    "WITH w AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(%(workspace)s)) "
    "SELECT pg_advisory_xact_lock(k) FROM w, unnest(%(keys)s::bigint[]) AS k"
)
_LOCK_WORKSPACE = "SELECT pg_advisory_xact_lock(%(workspace)s)"

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

# The transaction-local setting that hands the ids locked by `_OWNERS_AND_PROFILES`
# to the statement after it, so that the owners are probed once, not twice.
_LOCKED_SETTING = "cdp.locked_profiles"

# On one snapshot, taken once the identifiers are locked: who owns each wanted
# identifier (rows with a kind), and the owners' profiles, locked in id order
# (rows without). The owners need no second look after the lock: no other
# batch can attach an identifier this one has locked, and one that merges an
# owner away or erases it changes the owner's row, which the lock then reads
# as it is now (`merged_into` set, or the row gone), and the read is retried.
# The final condition is there to make the statement run `kept`.
_OWNERS_AND_PROFILES = (
    "WITH o AS MATERIALIZED (" + queries.IDENTIFIER_OWNERS + "), "  # noqa: S608 - constant SQL
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

# Each retry follows an owner merged away or erased while the read waited for
# it; more than a few in a row means something is wrong, not busy.
_READ_ATTEMPTS = 5


@dataclass
class _Read:
    rules: Rules
    owners: dict[Identifier, UUID]
    states: dict[UUID, ProfileState]
    holdings: dict[UUID, set[Identifier]]


def _rules(rows: Sequence[Any]) -> Rules:
    kinds = dict(Rules().kinds)
    for row in rows:
        kinds[row.kind] = KindRule(max_values=row.max_values, priority=row.priority)
    return Rules(kinds)


async def merge_rules(uow: UnitOfWork) -> Rules:
    [rows] = await uow.pipeline(Statement(_MERGE_RULES, {"ws": uow.workspace_id}))
    return _rules(rows)


def _workspace_lock_key(workspace: bytes) -> int:
    digest = hashlib.blake2b(workspace + b"\0workspace", digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock(workspace_id: UUID, identifiers: set[Identifier]) -> Statement:
    workspace = workspace_id.bytes  # a computed property: once, not per identifier
    whole = _workspace_lock_key(workspace)
    if len(identifiers) > MAX_IDENTIFIER_LOCKS:
        return Statement(_LOCK_WORKSPACE, {"workspace": whole})
    keys = sorted({_lock_key(workspace, i) for i in identifiers})
    return Statement(_LOCK, {"workspace": whole, "keys": array_literal(keys)})


async def lock_identifiers(uow: UnitOfWork, identifiers: set[Identifier]) -> None:
    await uow.pipeline(_lock(uow.workspace_id, identifiers))


def _profile_rows(
    rows: Sequence[Any], held: Sequence[Any]
) -> tuple[dict[UUID, ProfileState], dict[UUID, set[Identifier]], set[UUID]]:
    states: dict[UUID, ProfileState] = {}
    merged: set[UUID] = set()
    for r in rows:
        if r.merged_into is not None:
            merged.add(r.id)
            continue
        states[r.id] = ProfileState(
            dict(r.traits), dict(r.trait_meta), dict(r.computed), restricted=r.restricted
        )
    holdings: dict[UUID, set[Identifier]] = {p: set() for p in states}
    for h in held:
        if h.profile_id in holdings:
            holdings[h.profile_id].add(Identifier(h.kind, h.value))
    return states, holdings, merged


async def load_profiles(
    uow: UnitOfWork, profile_ids: list[UUID]
) -> tuple[dict[UUID, ProfileState], dict[UUID, set[Identifier]]]:
    if not profile_ids:
        return {}, {}
    params = {"ws": uow.workspace_id, "ids": array_literal(sorted(set(profile_ids)))}
    rows, held = await uow.pipeline(
        Statement(_PROFILES_BY_ID, params),
        Statement(_HELD, params),
    )
    states, holdings, _ = _profile_rows(rows, held)
    return states, {p: holdings.get(p, set()) for p in profile_ids}


async def read_locked(
    uow: UnitOfWork, operations: Sequence[Operation], *, before: Sequence[Statement] = ()
) -> tuple[Any, ...]:
    """Lock the batch's identifiers, then read their owners, the owners' profiles and the rules.

    One round trip: the statements run in order, each on its own snapshot, so
    the reads see whatever a batch that held one of the locks committed. A
    profile merged away by a batch that held none of them is read again.
    """
    wanted = sorted({i for op in operations for i in (*op.identifiers, *op.either)})
    ws = uow.workspace_id
    probe = {"ws": ws, "wanted": queries.wanted_identifiers(wanted)}
    # Prepared: each read probes an index per identifier or id, which a generic
    # plan does as well as a custom one, and planning it every time is not free
    # (bench/README.md).
    reads = [Statement(_OWNERS_AND_PROFILES, probe), Statement(_HELD_BY_LOCKED, {"ws": ws})]
    results = await uow.pipeline(
        *before, _lock(ws, set(wanted)), *reads, Statement(_MERGE_RULES, {"ws": ws})
    )
    found_rows, held, rule_rows = results[-3:]
    for _ in range(_READ_ATTEMPTS):
        owners = {Identifier(r.kind, r.value): r.id for r in found_rows if r.kind is not None}
        profile_rows = [r for r in found_rows if r.kind is None]
        states, holdings, merged = _profile_rows(profile_rows, held)
        if not merged and set(owners.values()) <= states.keys():
            break
        # An owner was merged away or erased while this waited for it: read again.
        found_rows, held = await uow.pipeline(*reads)
    else:
        raise RuntimeError("identities kept moving while the batch read them")
    # The rows of each `before` statement, then what was read.
    return (*results[: len(before)], _Read(_rules(rule_rows), owners, states, holdings))


def _choose(op: Operation, owners: dict[Identifier, UUID]) -> tuple[Identifier, ...]:
    if not op.either:
        return op.identifiers
    known = next((i for i in op.either if i in owners), op.either[-1])
    return (*op.identifiers, known)


def _partitions(events: list[tuple[UUID, Message]]) -> Statement:
    # No process-wide cache: a partition made in a transaction that rolls back is
    # gone, and the function's own existence check is cheap.
    # Message times are UTC already (cdp.ingest_messages makes them so).
    months = sorted({date(t.year, t.month, 1) for t in {m.timestamp for _, m in events}})
    return Statement(
        "SELECT cdp_ensure_event_partition(m) FROM unnest(%(months)s::date[]) AS m",
        {"months": array_literal(months)},
    )


def _event_rows(events: list[tuple[UUID, Message]]) -> str:
    return json_rows(
        [
            {
                "id": event_id,
                "ts": m.timestamp,
                "pid": p,
                "type": m.type,
                "name": m.name,
                "mid": m.message_id,
                "rat": m.received_at,
                "props": m.properties,
                "ctx": m.context,
            }
            for event_id, (p, m) in zip(new_ids_text(len(events)), events, strict=True)
        ]
    )


# Not frozen: bulk paths make one per item, and a frozen one is slower to build (bench/README.md).
@dataclass(slots=True)
class _GroupFold:
    """A batch's group calls for one profile and group, folded as traits are."""

    at: datetime
    traits: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, dict[str, str]] = field(default_factory=dict)

    def apply(self, traits: dict[str, Any], at: datetime) -> None:
        when = stamp(at)
        for key, value in traits.items():
            current = self.meta.get(key)
            if current is None or current["at"] <= when:
                self.traits[key] = value
                self.meta[key] = {"at": when}
        self.at = max(self.at, at)


def _batch_groups(
    operations: Sequence[Operation],
    order: list[int],
    assigned: dict[int, UUID],
    resolver: Resolver,
    states: dict[UUID, ProfileState],
) -> dict[tuple[UUID, str], _GroupFold]:
    """The batch's group calls, one fold per surviving profile and group, in event-time order."""
    groups: dict[tuple[UUID, str], _GroupFold] = {}
    for k in order:
        op = operations[k]
        if op.group is None:
            continue
        profile_id = resolver.survivor(assigned[k])
        # A restriction of processing leaves the groups as they were, as it does traits.
        if states[profile_id].restricted:
            continue
        group_id, traits = op.group
        fold = groups.get((profile_id, group_id))
        if fold is None:
            fold = groups[(profile_id, group_id)] = _GroupFold(op.at)
        fold.apply(traits, op.at)
    return groups


def _group_rows(groups: dict[tuple[UUID, str], _GroupFold]) -> str:
    return json_rows(
        [
            {"pid": p, "gid": g, "t": fold.traits, "m": fold.meta, "at": fold.at}
            for (p, g), fold in groups.items()
        ]
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


async def _write_batch(
    uow: UnitOfWork,
    resolver: Resolver,
    states: dict[UUID, ProfileState],
    existing: set[UUID],
    events: list[tuple[UUID, Message]],
    *,
    groups: dict[tuple[UUID, str], _GroupFold],
    now: datetime,
    answer: bool,
) -> dict[UUID, datetime]:
    """Write the batch; the creation time of each existing profile it updated.

    Without `answer`, the write is deferred to the unit of work's commit and
    nothing is returned.
    """
    plan = resolver.plan
    persisted = [m for m in plan.merges if m.source in existing]
    if persisted:
        await merge_rows(
            uow,
            sources=[m.source for m in persisted],
            targets=[resolver.survivor(m.target) for m in persisted],
            rules=[m.rule for m in persisted],
            triggers=[m.trigger for m in persisted],
        )
    created = [p for p in plan.new_profiles if resolver.survivor(p) == p]
    survivors = sorted({resolver.survivor(p) for p in existing} & existing)
    conflicts = [
        {
            "id": new_id(),
            "kind": c.identifier.kind,
            "value": c.identifier.value,
            "held": resolver.survivor(c.held_by),
            "claimed": resolver.survivor(c.claimed_by),
            "rule": c.rule,
            "trig": c.trigger,
        }
        for c in plan.conflicts
    ]
    identities = [
        {"kind": i.kind, "value": i.value, "pid": resolver.survivor(p)} for i, p in plan.attached
    ]
    write = Statement(
        _WRITE_BATCH,
        {
            "ws": uow.workspace_id,
            "now": now,
            "created": _state_rows(states, created),
            "identities": json_rows(identities),
            "conflicts": json_rows(conflicts),
            "events": _event_rows(events),
            "groups": _group_rows(groups),
            "updated": _state_rows(states, survivors),
        },
    )
    statements = [_partitions(events), write] if events else [write]
    if not answer:
        uow.defer(*statements)
        return {}
    *_, rows = await uow.pipeline(*statements)
    return {row.id: row.created_at for row in rows}


# A merge moves the sources' groups to their target. The groups of all the
# sources of one target are folded first (an INSERT may not reach one row
# twice): per trait, the value with the latest event time. A group the target
# has too is then merged as a later call would be, except that the target
# keeps a trait whose time is the same.
_MOVE_GROUPS = (
    "WITH moved AS (DELETE FROM profile_groups d "  # noqa: S608 - constant SQL
    "USING jsonb_to_recordset(CAST(:pairs AS jsonb)) AS m(src uuid, tgt uuid) "
    "WHERE d.workspace_id = :ws AND d.profile_id = m.src "
    "RETURNING m.tgt, d.group_id, d.traits, d.trait_meta, d.created_at, d.updated_at), "
    "latest AS (SELECT DISTINCT ON (v.tgt, v.group_id, t.key) v.tgt, v.group_id, t.key, "
    "t.value, v.trait_meta -> t.key AS meta FROM moved v CROSS JOIN LATERAL jsonb_each(v.traits) t "
    "ORDER BY v.tgt, v.group_id, t.key, v.trait_meta -> t.key ->> 'at' DESC NULLS LAST), "
    "folded AS (SELECT v.tgt, v.group_id, min(v.created_at) AS created_at, "
    "max(v.updated_at) AS updated_at FROM moved v GROUP BY v.tgt, v.group_id) "
    "INSERT INTO " + _GROUP_COLUMNS + " SELECT :ws, f.tgt, f.group_id, "
    "coalesce((SELECT jsonb_object_agg(l.key, l.value) FROM latest l "
    "WHERE l.tgt = f.tgt AND l.group_id = f.group_id), '{}'::jsonb), "
    "coalesce((SELECT jsonb_object_agg(l.key, l.meta) FROM latest l "
    "WHERE l.tgt = f.tgt AND l.group_id = f.group_id AND l.meta IS NOT NULL), '{}'::jsonb), "
    "f.created_at, f.updated_at FROM folded f " + _GROUP_KEY + _group_merge("<")
)


async def merge_rows(
    uow: UnitOfWork,
    *,
    sources: list[UUID],
    targets: list[UUID],
    rules: list[str],
    triggers: list[str],
    actor: audit.Actor = IDENTITY_RESOLUTION,
) -> None:
    """Point everything of each source at its target, and record and audit the merges."""
    pairs_json = json_rows([{"src": a, "tgt": b} for a, b in zip(sources, targets, strict=True)])
    params = {"ws": uow.workspace_id, "pairs": pairs_json, "src": array_literal(sources)}
    pairs = "jsonb_to_recordset(CAST(:pairs AS jsonb)) AS m(src uuid, tgt uuid)"
    await uow.execute(
        text(
            f"UPDATE identities i SET profile_id = m.tgt FROM {pairs} "  # noqa: S608 - constant SQL
            "WHERE i.workspace_id = :ws AND i.profile_id = m.src"
        ),
        params,
    )
    await uow.execute(
        text(
            f"UPDATE events e SET profile_id = m.tgt FROM {pairs} "  # noqa: S608
            "WHERE e.workspace_id = :ws AND e.profile_id = m.src"
        ),
        params,
    )
    await uow.execute(text(_MOVE_GROUPS), params)
    # Earlier merges into a source now point at its target: one hop to the survivor.
    await uow.execute(
        text(
            f"UPDATE profiles p SET merged_into = m.tgt, updated_at = now() FROM {pairs} "  # noqa: S608
            "WHERE p.workspace_id = :ws AND (p.merged_into = m.src OR p.id = m.src)"
        ),
        params,
    )
    await uow.execute(
        text(
            "UPDATE profiles SET traits = '{}'::jsonb, trait_meta = '{}'::jsonb, "
            "computed = '{}'::jsonb WHERE workspace_id = :ws AND id = ANY(CAST(:src AS uuid[]))"
        ),
        params,
    )
    await uow.execute(
        text(
            "INSERT INTO profile_merges (workspace_id, id, source_profile_id, target_profile_id, "
            "rule, trigger, created_at) SELECT :ws, r.id, r.src, r.tgt, r.rule, r.trig, now() "
            "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
            "AS r(id uuid, src uuid, tgt uuid, rule text, trig text)"
        ),
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
    await audit.record_many(
        uow,
        actor,
        "profile.merged",
        object_type="profile",
        items=[
            (b, {"source_profile_id": str(a), "rule": r, "trigger": t})
            for a, b, r, t in zip(sources, targets, rules, triggers, strict=True)
        ],
    )


def _state_rows(states: dict[UUID, ProfileState], ids_: list[UUID]) -> str:
    return json_rows(
        [
            {
                "id": p,
                "t": states[p].traits,
                "m": states[p].meta,
                "c": states[p].computed,
                "r": states[p].restricted,
            }
            for p in ids_
        ]
    )


async def save_states(uow: UnitOfWork, states: dict[UUID, ProfileState], ids_: list[UUID]) -> None:
    if not ids_:
        return
    await uow.execute(
        text("SELECT count(*) FROM cdp_update_profiles(:ws, CAST(:rows AS jsonb), :now)"),
        {"ws": uow.workspace_id, "now": uow.clock.now(), "rows": _state_rows(states, ids_)},
    )


async def apply(uow: UnitOfWork, operations: Sequence[Operation]) -> Outcome:
    """Resolve and write a batch of operations; returns each operation's profile."""
    if not operations:
        return Outcome()
    (read,) = await read_locked(uow, operations)
    return await resolve_and_write(uow, operations, read, answer=True)


async def resolve_and_write(
    uow: UnitOfWork, operations: Sequence[Operation], read: _Read, *, answer: bool
) -> Outcome:
    owners, states = read.owners, read.states
    involved = set(states)
    resolver = Resolver(read.rules, owners, read.holdings, make_id=id_supply(len(operations)))
    order = sorted(range(len(operations)), key=lambda k: (operations[k].at, k))
    assigned: dict[int, UUID] = {}
    for k in order:
        op = operations[k]
        assigned[k] = resolver.resolve(_choose(op, owners), op.trigger)
    for profile_id in resolver.plan.new_profiles:
        states[profile_id] = ProfileState()
    for merge in resolver.plan.merges:
        target = resolver.survivor(merge.target)
        states[target].absorb(states[merge.source])
        states[merge.source] = ProfileState()
    events: list[tuple[UUID, Message]] = []
    for k in order:
        op = operations[k]
        profile_id = resolver.survivor(assigned[k])
        state = states[profile_id]
        if op.traits and not state.restricted:
            state.apply_traits(op.traits, op.at, op.trait_source)
        if op.event is not None:
            if not state.restricted:
                state.apply_event(
                    op.event.name if op.event.type == "track" else None,
                    op.event.properties,
                    op.at,
                )
            events.append((profile_id, op.event))
    groups = _batch_groups(operations, order, assigned, resolver, states)
    now = uow.clock.now()
    updated = await _write_batch(
        uow, resolver, states, involved, events, groups=groups, now=now, answer=answer
    )
    if not answer:
        return Outcome()
    profile_ids = [resolver.survivor(assigned[k]) for k in range(len(operations))]
    profiles = {}
    for p in dict.fromkeys(profile_ids):
        state = states[p]
        profiles[p] = queries.ProfileRow(
            p, state.traits, state.meta, state.computed, updated.get(p, now), now
        )
    return Outcome(profile_ids=profile_ids, profiles=profiles)
