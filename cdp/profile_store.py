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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from cdp import queries, repository
from cdp.model import Identifier, Message
from cdp.resolution import KindRule, Resolver, Rules
from cdp.traits import ProfileState, stamp
from consent import audit
from domain import changes
from domain.ids import id_supply, new_id, new_ids_text
from domain.sqlparams import json_rows
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
    [rows] = await uow.pipeline(queries.read_merge_rules(uow.workspace_id))
    return _rules(rows)


async def lock_identifiers(uow: UnitOfWork, identifiers: set[Identifier]) -> None:
    await uow.pipeline(queries.lock_identifiers(uow.workspace_id, identifiers))


def _profile_rows(
    rows: Sequence[Any], held: Sequence[Any]
) -> tuple[dict[UUID, ProfileState], dict[UUID, set[Identifier]], set[UUID]]:
    states: dict[UUID, ProfileState] = {}
    merged: set[UUID] = set()
    for r in rows:
        if r.merged_into is not None:
            merged.add(r.id)
            continue
        states[r.id] = ProfileState.from_row(
            r.traits, r.trait_meta, r.computed, restricted=r.restricted
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
    rows, held = await uow.pipeline(*queries.read_profiles(uow.workspace_id, profile_ids))
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
    reads = queries.read_owners_and_profiles(ws, wanted)
    results = await uow.pipeline(
        *before,
        queries.lock_identifiers(ws, set(wanted)),
        *reads,
        queries.read_merge_rules(ws),
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


def event_rows(events: list[tuple[UUID, Message]], ids: list[str]) -> str:
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
            for event_id, (p, m) in zip(ids, events, strict=True)
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


def _changed(
    resolver: Resolver,
    events: list[tuple[UUID, Message]],
    identities: list[dict[str, Any]],
    states: dict[UUID, ProfileState],
) -> dict[UUID, frozenset[str]]:
    """What the batch changed of each profile, for `domain.changes`."""
    found: dict[UUID, set[str]] = {}
    # A new profile may match rules that hold for an empty one ("never ordered").
    for profile_id in resolver.plan.new_profiles:
        found.setdefault(resolver.survivor(profile_id), set()).add(changes.NEW)
    for merge in resolver.plan.merges:
        found.setdefault(merge.source, set()).add(changes.MERGE)
        found.setdefault(resolver.survivor(merge.target), set()).add(changes.MERGE)
    for profile_id, message in events:
        found.setdefault(profile_id, set()).add(changes.event(message.name))
    for identity in identities:
        found.setdefault(identity["pid"], set()).add(changes.IDENTITY)
    for profile_id, state in states.items():
        if state.traits_changed:
            found.setdefault(resolver.survivor(profile_id), set()).add(changes.TRAITS)
    return {profile_id: frozenset(why) for profile_id, why in found.items()}


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
    event_ids = new_ids_text(len(events))
    write = queries.write_batch(
        uow.workspace_id,
        now,
        created=_state_rows(states, created),
        identities=json_rows(identities),
        conflicts=json_rows(conflicts),
        events=event_rows(events, event_ids),
        groups=_group_rows(groups),
        # An event that folds into nothing (`Email Delivered`, say) leaves its profile's row
        # alone; an answer names every profile, so it writes them all.
        updated=_state_rows(
            states, survivors if answer else [p for p in survivors if not states[p].unchanged()]
        ),
    )
    statements = [queries.ensure_partitions(events), write] if events else [write]
    notices = changes.statements(uow.workspace_id, _changed(resolver, events, identities, states))
    statements.extend(notices)
    statements.extend(changes.event_statements(uow.workspace_id, changes.NewEvents(
        event_ids, [m.timestamp for _p, m in events], [p for p, _m in events],
        [m.name for _p, m in events])))  # fmt: skip
    if not answer:
        uow.defer(*statements)
        return {}
    results = await uow.pipeline(*statements)
    rows = results[statements.index(write)]
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
    await queries.merge(uow, sources=sources, targets=targets, rules=rules, triggers=triggers)
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
    await repository.update_profiles(uow, _state_rows(states, ids_))


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
