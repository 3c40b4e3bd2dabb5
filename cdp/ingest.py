"""Set-based ingest: resolve a whole batch, then write it in a few statements.

Order of work inside the caller's transaction:
1. messages whose id the workspace has seen are dropped;
2. a transaction-scoped advisory lock is taken on every identifier, in sorted
   order, so two batches that share an identifier serialize and none deadlock;
3. one query finds who owns each identifier; the involved profiles are
   locked (in id order) and read;
4. the resolver decides, in memory and in event-time order;
5. new profiles, identities, merges, conflicts, events and folded traits are
   written with one statement each.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text

from cdp import identifiers as ids
from cdp import queries
from cdp.model import ANONYMOUS_ID, USER_ID, Identifier, Message
from cdp.resolution import KindRule, Resolver, Rules
from cdp.traits import ProfileState
from consent import audit
from domain.ids import new_id
from domain.sqlparams import array_literal, json_rows
from domain.uow import UnitOfWork

IDENTITY_RESOLUTION = audit.Actor.system("identity-resolution")


@dataclass(frozen=True)
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


def message_identifiers(message: Message) -> tuple[tuple[Identifier, ...], tuple[Identifier, ...]]:
    """(identifiers, either-or candidates) carried by a Segment message."""
    found: list[Identifier] = []
    either: tuple[Identifier, ...] = ()
    if message.user_id:
        found.append(ids.normalize(USER_ID, message.user_id))
    if message.anonymous_id:
        found.append(ids.normalize(ANONYMOUS_ID, message.anonymous_id))
    if message.type == "identify":
        for kind in ("email", "phone"):
            identifier = ids.maybe(kind, message.traits.get(kind))
            if identifier is not None:
                found.append(identifier)
    if message.type == "alias" and message.previous_id:
        either = (
            ids.normalize(USER_ID, message.previous_id),
            ids.normalize(ANONYMOUS_ID, message.previous_id),
        )
    return tuple(found), either


def operations_for(messages: Sequence[Message]) -> list[Operation]:
    operations = []
    for message in messages:
        found, either = message_identifiers(message)
        operations.append(
            Operation(
                identifiers=found,
                trigger=f"message:{message.message_id}",
                at=message.timestamp,
                traits=message.traits if message.type == "identify" and message.traits else None,
                event=message,
                either=either,
            )
        )
    return operations


async def _new_messages(uow: UnitOfWork, messages: Sequence[Message]) -> list[Message]:
    unique: dict[str, Message] = {}
    for message in messages:
        unique.setdefault(message.message_id, message)
    if not unique:
        return []
    rows = await uow.execute(
        text(
            "INSERT INTO event_message_ids (workspace_id, message_id) "
            "SELECT :ws, m FROM jsonb_array_elements_text(CAST(:ids AS jsonb)) AS m "
            "ON CONFLICT DO NOTHING RETURNING message_id"
        ),
        {"ws": uow.workspace_id, "ids": json_rows(list(unique))},
    )
    fresh = {row.message_id for row in rows}
    return [m for m in unique.values() if m.message_id in fresh]


async def ingest(uow: UnitOfWork, messages: Sequence[Message]) -> Outcome:
    """Store Segment messages; a message id seen before is accepted and not stored twice."""
    fresh = await _new_messages(uow, messages)
    if not fresh:
        return Outcome()
    return await apply(uow, operations_for(fresh))


async def merge_rules(uow: UnitOfWork) -> Rules:
    rows = await uow.execute(
        text("SELECT kind, max_values, priority FROM merge_rules WHERE workspace_id = :ws"),
        {"ws": uow.workspace_id},
    )
    kinds = dict(Rules().kinds)
    for row in rows:
        kinds[row.kind] = KindRule(max_values=row.max_values, priority=row.priority)
    return Rules(kinds)


async def lock_identifiers(uow: UnitOfWork, identifiers: set[Identifier]) -> None:
    workspace = uow.workspace_id.bytes  # a computed property: once, not per identifier
    keys = sorted({_lock_key(workspace, i) for i in identifiers})
    await uow.execute(
        text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
        {"keys": array_literal(keys)},
    )


async def load_profiles(
    uow: UnitOfWork, profile_ids: list[UUID]
) -> tuple[dict[UUID, ProfileState], dict[UUID, set[Identifier]]]:
    if not profile_ids:
        return {}, {}
    # One statement locks the profiles (in id order, so batches never deadlock)
    # and reads what they hold. Anonymous ids can be many and never limit a
    # merge, so they are not loaded.
    rows = await uow.execute(
        text(
            "SELECT p.id, p.traits, p.trait_meta, p.computed, p.restricted_at IS NOT NULL "
            "AS restricted, h.held FROM profiles p "
            "CROSS JOIN LATERAL (SELECT coalesce(jsonb_agg(jsonb_build_array(i.kind, i.value)), "
            "'[]'::jsonb) AS held FROM identities i WHERE i.workspace_id = p.workspace_id "
            "AND i.profile_id = p.id AND i.kind <> 'anonymous_id') AS h "
            "WHERE p.workspace_id = :ws AND p.id = ANY(CAST(:ids AS uuid[])) "
            "ORDER BY p.id FOR UPDATE OF p"
        ),
        {"ws": uow.workspace_id, "ids": array_literal(profile_ids)},
    )
    states: dict[UUID, ProfileState] = {}
    holdings: dict[UUID, set[Identifier]] = {p: set() for p in profile_ids}
    for r in rows:
        states[r.id] = ProfileState(
            dict(r.traits), dict(r.trait_meta), dict(r.computed), restricted=r.restricted
        )
        holdings[r.id] = {Identifier(kind, value) for kind, value in r.held}
    return states, holdings


def _choose(op: Operation, owners: dict[Identifier, UUID]) -> tuple[Identifier, ...]:
    if not op.either:
        return op.identifiers
    known = next((i for i in op.either if i in owners), op.either[-1])
    return (*op.identifiers, known)


async def _ensure_partitions(uow: UnitOfWork, events: list[tuple[UUID, Message]]) -> None:
    # No process-wide cache: a partition made in a transaction that rolls back is
    # gone, and the function's own existence check is cheap.
    months = sorted({m.timestamp.astimezone(UTC).date().replace(day=1) for _, m in events})
    await uow.execute(
        text("SELECT cdp_ensure_event_partition(m) FROM unnest(CAST(:months AS date[])) AS m"),
        {"months": array_literal(months)},
    )


def _event_rows(events: list[tuple[UUID, Message]]) -> str:
    return json_rows(
        [
            {
                "id": new_id(),
                "ts": m.timestamp,
                "pid": p,
                "type": m.type,
                "name": m.name,
                "mid": m.message_id,
                "rat": m.received_at,
                "props": m.properties,
                "ctx": m.context,
            }
            for p, m in events
        ]
    )


# Every write of a batch in one statement: data-modifying CTEs all run to
# completion, on one snapshot, whether or not the final SELECT reads them, and
# none of them reads what another writes. One round trip instead of five is most
# of what a batch costs outside PostgreSQL itself. It answers with the creation
# time of the profiles it updated: the rest of each written row is known here.
_WRITE_BATCH = text(
    "WITH new_profiles AS ("
    " INSERT INTO profiles (workspace_id, id, traits, trait_meta, computed, created_at, updated_at)"
    " SELECT :ws, r.id, r.t, r.m, r.c, :now, :now"
    " FROM jsonb_to_recordset(CAST(:created AS jsonb)) AS r(id uuid, t jsonb, m jsonb, c jsonb)),"
    " new_identities AS ("
    " INSERT INTO identities (workspace_id, kind, value, profile_id, created_at)"
    " SELECT :ws, r.kind, r.value, r.pid, :now"
    " FROM jsonb_to_recordset(CAST(:identities AS jsonb)) AS r(kind text, value text, pid uuid)"
    " ON CONFLICT (workspace_id, kind, value) DO UPDATE SET profile_id = EXCLUDED.profile_id),"
    " new_conflicts AS ("
    " INSERT INTO identity_conflicts (workspace_id, id, kind, value, held_by, claimed_by, rule,"
    " trigger, created_at)"
    " SELECT :ws, r.id, r.kind, r.value, r.held, r.claimed, r.rule, r.trig, :now"
    " FROM jsonb_to_recordset(CAST(:conflicts AS jsonb)) AS r(id uuid, kind text, value text,"
    " held uuid, claimed uuid, rule text, trig text)),"
    " new_events AS ("
    " INSERT INTO events (workspace_id, id, timestamp, profile_id, type, name, message_id,"
    " received_at, properties, context)"
    " SELECT :ws, r.id, r.ts, r.pid, r.type, r.name, r.mid, r.rat, r.props, r.ctx"
    " FROM jsonb_to_recordset(CAST(:events AS jsonb)) AS r(id uuid, ts timestamptz, pid uuid,"
    " type text, name text, mid text, rat timestamptz, props jsonb, ctx jsonb)),"
    # Profiles are updated by primary key, one by one (see migration 0005).
    " updated AS (SELECT * FROM cdp_update_profiles(:ws, CAST(:updated AS jsonb), :now))"
    " SELECT id, created_at FROM updated"
)


async def _write_batch(
    uow: UnitOfWork,
    resolver: Resolver,
    states: dict[UUID, ProfileState],
    existing: set[UUID],
    events: list[tuple[UUID, Message]],
    *,
    now: datetime,
) -> dict[UUID, datetime]:
    """Write the batch; the creation time of each existing profile it updated."""
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
    if events:
        await _ensure_partitions(uow, events)
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
    rows = await uow.execute(
        _WRITE_BATCH,
        {
            "ws": uow.workspace_id,
            "now": now,
            "created": _state_rows(states, created),
            "identities": json_rows(identities),
            "conflicts": json_rows(conflicts),
            "events": _event_rows(events),
            "updated": _state_rows(states, survivors),
        },
    )
    return {row.id: row.created_at for row in rows}


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
    wanted = {i for op in operations for i in (*op.identifiers, *op.either)}
    await lock_identifiers(uow, wanted)
    owners = await queries.profile_ids_by_identifier(uow, list(wanted))
    involved = sorted(set(owners.values()))
    states, holdings = await load_profiles(uow, involved)
    resolver = Resolver(await merge_rules(uow), owners, holdings)
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
    now = uow.clock.now()
    updated = await _write_batch(uow, resolver, states, set(involved), events, now=now)
    profile_ids = [resolver.survivor(assigned[k]) for k in range(len(operations))]
    profiles = {}
    for p in dict.fromkeys(profile_ids):
        state = states[p]
        profiles[p] = queries.ProfileRow(
            p, state.traits, state.meta, state.computed, updated.get(p, now), now
        )
    return Outcome(profile_ids=profile_ids, profiles=profiles)
