"""Suppression entries, found by the keyed hashes of identifiers."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from consent.model import Suppression, SuppressionReason
from consent.repository.params import any_bytes
from consent.tables import suppressions
from domain.uow import UnitOfWork

_INSERT = insert(suppressions).on_conflict_do_nothing()


async def insert_many(
    uow: UnitOfWork,
    digests: Sequence[tuple[str, bytes]],
    *,
    channel: str,
    purpose: str,
    reason: SuppressionReason,
    source: str,
    at: datetime,
) -> int:
    """Insert one entry per (identifier kind, digest); an entry that exists is kept as it was."""
    result = await uow.execute(
        _INSERT,
        [
            {
                "workspace_id": uow.workspace_id,
                "digest": digest,
                "identifier_kind": kind,
                "channel": channel,
                "purpose": purpose,
                "reason": reason.value,
                "source": source,
                "created_at": at,
            }
            for kind, digest in digests
        ],
    )
    return int(result.rowcount or 0)


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
