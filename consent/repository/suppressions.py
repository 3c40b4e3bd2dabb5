"""Suppression entries, found by the keyed hashes of identifiers."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from consent.model import Suppression, SuppressionReason
from consent.repository.params import any_bytes
from consent.tables import suppressions
from domain.uow import UnitOfWork


@dataclass(frozen=True)
class NewEntry:
    kind: str
    digest: bytes
    channel: str
    purpose: str
    reason: SuppressionReason
    source: str


async def insert_rows(uow: UnitOfWork, rows: Sequence[NewEntry], *, at: datetime) -> int:
    """Insert entries of any reasons and sources in one statement; existing ones are kept."""
    if not rows:
        return 0
    found = await uow.fetch(
        "INSERT INTO suppressions (workspace_id, digest, identifier_kind, channel, purpose,"
        " reason, source, created_at)"
        " SELECT %(ws)s, r.digest, r.kind, r.channel, r.purpose, r.reason, r.source, %(at)s"
        " FROM unnest(%(digests)s::bytea[], %(kinds)s::text[], %(channels)s::text[],"
        " %(purposes)s::text[], %(reasons)s::text[], %(sources)s::text[])"
        " AS r(digest, kind, channel, purpose, reason, source)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        {
            "ws": uow.workspace_id, "at": at, "digests": [r.digest for r in rows],
            "kinds": [r.kind for r in rows], "channels": [r.channel for r in rows],
            "purposes": [r.purpose for r in rows], "reasons": [r.reason.value for r in rows],
            "sources": [r.source for r in rows],
        },
    )  # fmt: skip
    return len(found)


async def delete_for(uow: UnitOfWork, digests: Sequence[bytes], reason: SuppressionReason) -> int:
    result = await uow.execute(
        delete(suppressions).where(
            suppressions.c.workspace_id == uow.workspace_id,
            suppressions.c.reason == reason.value,
            suppressions.c.digest == any_bytes(digests),
        )
    )
    return int(result.rowcount or 0)


def _suppression(row: Any) -> Suppression:
    return Suppression(
        identifier_kind=row.identifier_kind,
        channel=row.channel,
        purpose=row.purpose,
        reason=SuppressionReason(row.reason),
        source=row.source,
        created_at=row.created_at,
    )


async def for_many(uow: UnitOfWork, subjects: Sequence[Sequence[bytes]]) -> list[list[Suppression]]:
    """The entries of each subject (given by its digests), oldest first, in one statement."""
    holders: dict[bytes, list[int]] = {}
    for position, digests in enumerate(subjects):
        for digest in set(digests):
            holders.setdefault(digest, []).append(position)
    found: list[list[Suppression]] = [[] for _ in subjects]
    if not holders:
        return found
    c = suppressions.c
    rows = await uow.execute(
        select(c.digest, c.identifier_kind, c.channel, c.purpose, c.reason, c.source, c.created_at)
        .where(c.workspace_id == uow.workspace_id, c.digest == any_bytes(sorted(holders)))
        .order_by(c.created_at, c.reason)
    )
    for row in rows:
        entry = _suppression(row)
        for position in holders[bytes(row.digest)]:
            found[position].append(entry)
    return found
