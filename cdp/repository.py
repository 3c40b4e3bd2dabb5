"""The CDP's SQL off the hot paths, in SQLAlchemy Core against `cdp.tables`.

Duplicate detection, merge rules, personal-data export and erasure, event
retention, data subjects, and profile updates outside a batch. The hot paths
(ingest, the profile store's batches, upsertProfiles, profile reads) are
psycopg statements in `cdp.queries`.
"""

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    Text,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from cdp.model import Identifier
from cdp.tables import events, identities, identity_conflicts, merge_rules, profiles
from domain.db import metadata
from domain.uow import UnitOfWork
from domain.workspaces import workspaces

# Profile updates


async def update_profiles(uow: UnitOfWork, changes: str) -> None:
    """Write profiles' traits, meta, computed traits and restriction (`changes`: JSON rows).

    Through the same database function as a batch's write (see migration 0005),
    which Core calls but cannot express.
    """
    updated = func.cdp_update_profiles(
        uow.workspace_id, cast(literal(changes, Text), JSONB), uow.clock.now()
    ).table_valued("id", "created_at")
    await uow.execute(select(func.count()).select_from(updated))


# Duplicate detection


async def live_profile_traits(uow: UnitOfWork, keys: Sequence[str]) -> dict[UUID, dict[str, Any]]:
    """Each live profile's traits, only those under `keys`."""
    # Only the traits the comparison reads leave the database: traits may be 32 KB each.
    trait = func.jsonb_each(profiles.c.traits).table_valued("key", "value").alias("t")
    kept = (
        select(func.jsonb_object_agg(trait.c.key, trait.c.value))
        .where(trait.c.key.in_(keys))
        .scalar_subquery()
    )
    rows = await uow.execute(
        select(profiles.c.id, func.coalesce(kept, func.jsonb_build_object()).label("traits")).where(
            profiles.c.workspace_id == uow.workspace_id, profiles.c.merged_into.is_(None)
        )
    )
    return {row.id: row.traits for row in rows}


async def live_identities(uow: UnitOfWork, *, except_kind: str) -> list[tuple[UUID, Identifier]]:
    """Every identity of a live profile, but those of `except_kind`, with its profile."""
    rows = await uow.execute(
        select(identities.c.profile_id, identities.c.kind, identities.c.value)
        .join(
            profiles,
            (profiles.c.workspace_id == identities.c.workspace_id)
            & (profiles.c.id == identities.c.profile_id),
        )
        .where(
            identities.c.workspace_id == uow.workspace_id,
            profiles.c.merged_into.is_(None),
            identities.c.kind != except_kind,
        )
    )
    return [(row.profile_id, Identifier(row.kind, row.value)) for row in rows]


async def conflicting_profiles(uow: UnitOfWork) -> list[tuple[UUID, UUID]]:
    """The surviving profiles of both sides of each recorded identity conflict."""
    held, claimed = profiles.alias("h"), profiles.alias("c")
    x = identity_conflicts.alias("x")
    rows = await uow.execute(
        select(
            func.coalesce(held.c.merged_into, held.c.id).label("a"),
            func.coalesce(claimed.c.merged_into, claimed.c.id).label("b"),
        )
        .distinct()
        .select_from(x)
        .join(held, (held.c.workspace_id == x.c.workspace_id) & (held.c.id == x.c.held_by))
        .join(
            claimed,
            (claimed.c.workspace_id == x.c.workspace_id) & (claimed.c.id == x.c.claimed_by),
        )
        .where(x.c.workspace_id == uow.workspace_id)
    )
    return [(row.a, row.b) for row in rows]


# Merge rules


async def upsert_merge_rule(
    uow: UnitOfWork, kind: str, *, max_values: int | None, priority: int
) -> None:
    """Create or replace the workspace's rule for `kind`."""
    statement = insert(merge_rules).values(
        workspace_id=uow.workspace_id, kind=kind, max_values=max_values, priority=priority
    )
    await uow.execute(
        statement.on_conflict_do_update(
            index_elements=[merge_rules.c.workspace_id, merge_rules.c.kind],
            set_={
                "max_values": statement.excluded.max_values,
                "priority": statement.excluded.priority,
            },
        )
    )


# Personal data: a data subject's rows, found by the columns that hold its profile ids


def _any_of(profile_ids: Sequence[UUID]) -> Any:
    """`= ANY(...)` of one array parameter: one statement whatever the number of ids."""
    return any_(bindparam("ids", list(profile_ids), type_=ARRAY(PG_UUID(as_uuid=True))))


def _holds_any(table: Table, columns: Sequence[str], profile_ids: Sequence[UUID]) -> Any:
    ids = _any_of(profile_ids)
    return or_(*(table.c[column] == ids for column in columns))


async def subject_rows(
    uow: UnitOfWork,
    table: str,
    *,
    columns: Sequence[str],
    held_in: Sequence[str],
    workspace_id: UUID,
    profile_ids: Sequence[UUID],
) -> list[dict[str, Any]]:
    """`columns` of `table`'s rows whose `held_in` columns hold one of `profile_ids`."""
    found = metadata.tables[table]
    result = await uow.execute(
        select(*(found.c[column] for column in columns)).where(
            found.c.workspace_id == workspace_id, _holds_any(found, held_in, profile_ids)
        )
    )
    # Keyed by the names given: SQLAlchemy's own are a str subclass, which orjson refuses.
    return [dict(zip(columns, row, strict=True)) for row in result]


async def delete_subject_rows(
    uow: UnitOfWork,
    table: str,
    *,
    held_in: Sequence[str],
    workspace_id: UUID,
    profile_ids: Sequence[UUID],
) -> int:
    """Delete `table`'s rows whose `held_in` columns hold one of `profile_ids`; how many."""
    found = metadata.tables[table]
    result = await uow.execute(
        delete(found).where(
            found.c.workspace_id == workspace_id, _holds_any(found, held_in, profile_ids)
        )
    )
    return int(result.rowcount or 0)


# Data subjects


def _survivor(table: Any) -> ColumnElement[Any]:
    """The id of the profile a row of `profiles` now is (see `cdp.queries.survivor`)."""
    return case((table.c.merged_into.is_(None), table.c.id), else_=table.c.merged_into)


async def subject_profiles(uow: UnitOfWork, profile_id: UUID) -> Sequence[Row[Any]]:
    """`id, live` of the profile that `profile_id` now is, then of those merged into it."""
    asked = profiles.alias("q")
    found = (
        select(_survivor(asked).label("id"))
        .where(asked.c.workspace_id == uow.workspace_id, asked.c.id == profile_id)
        .cte("survivor")
    )
    rows = await uow.execute(
        select(profiles.c.id, profiles.c.merged_into.is_(None).label("live"))
        .where(
            profiles.c.workspace_id == uow.workspace_id,
            or_(profiles.c.id == found.c.id, profiles.c.merged_into == found.c.id),
        )
        .order_by(profiles.c.merged_into.is_not(None), profiles.c.id)
    )
    return list(rows)


async def restrict_profiles(
    uow: UnitOfWork, profile_ids: Sequence[UUID], at: datetime | None
) -> int:
    """Set (or, with None, lift) the restriction of processing of the profiles; how many."""
    result = await uow.execute(
        update(profiles)
        .where(profiles.c.workspace_id == uow.workspace_id, profiles.c.id == _any_of(profile_ids))
        .values(restricted_at=at)
    )
    return int(result.rowcount or 0)


# Event retention


async def drop_event_partitions_before(uow: UnitOfWork, cutoff: date) -> int:
    """Drop the event partitions that end on or before `cutoff`; how many.

    Partition DDL, done by a database function (see migration 0003).
    """
    result = await uow.execute(select(func.cdp_drop_event_partitions_before(cutoff)))
    return int(result.scalar_one())


async def set_workspace_retention(uow: UnitOfWork, days: int | None) -> None:
    await uow.execute(
        update(workspaces)
        .where(workspaces.c.id == uow.workspace_id)
        .values(event_retention_days=days)
    )


async def workspace_retention(uow: UnitOfWork) -> int | None:
    result = await uow.execute(
        select(workspaces.c.event_retention_days).where(workspaces.c.id == uow.workspace_id)
    )
    value = result.scalar_one_or_none()
    return None if value is None else int(value)


async def retention_periods(uow: UnitOfWork) -> list[tuple[UUID, int]]:
    """Every workspace that set a period: an owner function, since the runtime role sees one."""
    periods = func.cdp_event_retention_periods().table_valued("workspace_id", "days")
    rows = await uow.execute(select(periods.c.workspace_id, periods.c.days))
    return [(r.workspace_id, int(r.days)) for r in rows]


async def delete_events_before(uow: UnitOfWork, before: datetime, *, limit: int) -> int:
    """Delete up to `limit` of the workspace's events before `before`; how many."""
    old = (
        select(events.c.id, events.c.timestamp)
        .where(events.c.workspace_id == uow.workspace_id, events.c.timestamp < before)
        .limit(limit)
        .subquery("old")
    )
    result = await uow.execute(
        delete(events).where(
            events.c.workspace_id == uow.workspace_id,
            events.c.id == old.c.id,
            events.c.timestamp == old.c.timestamp,
        )
    )
    return int(result.rowcount or 0)
