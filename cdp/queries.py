"""Reads for profiles, identities, events, merges and conflicts, batched by design.

Each function takes many ids and answers with one statement, so the GraphQL
layer's DataLoaders keep a page of profiles to a fixed number of queries.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from cdp.model import Identifier
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
    # A probe per id (see profile_store._PROFILES): `q.id = ANY(ids)` lets a plan made
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
