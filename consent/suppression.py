"""The suppression list, keyed by keyed hashes of identifiers so that it survives erasure."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from consent import audit
from consent.model import LIFTABLE_REASONS, Suppression, SuppressionReason
from domain.errors import ValidationError
from domain.uow import UnitOfWork


def _suppression(row: Any) -> Suppression:
    return Suppression(
        identifier_kind=row.identifier_kind,
        channel=row.channel,
        purpose=row.purpose,
        reason=SuppressionReason(row.reason),
        source=row.source,
        created_at=row.created_at,
    )


async def add(
    uow: UnitOfWork,
    actor: audit.Actor,
    *,
    digests: Sequence[tuple[str, bytes]],
    channel: str,
    purpose: str,
    reason: SuppressionReason,
    source: str,
    object_id: object,
) -> int:
    """Suppress each (identifier kind, digest); an entry that exists is kept as it was."""
    if not digests:
        return 0
    now = uow.clock.now()
    result = await uow.execute(
        text(
            "INSERT INTO suppressions (workspace_id, digest, identifier_kind, channel, purpose, "
            "reason, source, created_at) VALUES (:ws, :digest, :kind, :channel, :purpose, "
            ":reason, :source, :now) ON CONFLICT DO NOTHING"
        ),
        [
            {
                "ws": uow.workspace_id,
                "digest": digest,
                "kind": kind,
                "channel": channel,
                "purpose": purpose,
                "reason": reason.value,
                "source": source,
                "now": now,
            }
            for kind, digest in digests
        ],
    )
    await audit.record(
        uow,
        actor,
        "suppression.added",
        object_type="profile",
        object_id=object_id,
        details={
            "reason": reason.value,
            "channel": channel,
            "purpose": purpose,
            "source": source,
            "identifier_kinds": sorted({k for k, _ in digests}),
        },
    )
    return int(result.rowcount or 0)


async def lift(
    uow: UnitOfWork,
    actor: audit.Actor,
    *,
    digests: Sequence[bytes],
    reason: SuppressionReason,
    object_id: object,
) -> int:
    if reason not in LIFTABLE_REASONS:
        raise ValidationError(f"a {reason.value!r} suppression cannot be lifted", field="reason")
    if not digests:
        return 0
    result = await uow.execute(
        text(
            "DELETE FROM suppressions WHERE workspace_id = :ws AND reason = :reason "
            "AND digest = ANY(:digests)"
        ),
        {"ws": uow.workspace_id, "reason": reason.value, "digests": list(digests)},
    )
    lifted = int(result.rowcount or 0)
    await audit.record(
        uow,
        actor,
        "suppression.lifted",
        object_type="profile",
        object_id=object_id,
        details={"reason": reason.value, "entries": lifted},
    )
    return lifted


async def entries(uow: UnitOfWork, digests: Sequence[bytes]) -> list[Suppression]:
    return (await entries_for_many(uow, [digests]))[0]


async def entries_for_many(
    uow: UnitOfWork, subjects: Sequence[Sequence[bytes]]
) -> list[list[Suppression]]:
    """The entries of each subject (given by its digests), oldest first, in one statement."""
    holders: dict[bytes, list[int]] = {}
    for position, digests in enumerate(subjects):
        for digest in set(digests):
            holders.setdefault(digest, []).append(position)
    found: list[list[Suppression]] = [[] for _ in subjects]
    if not holders:
        return found
    rows = await uow.execute(
        text(
            "SELECT digest, identifier_kind, channel, purpose, reason, source, created_at "
            "FROM suppressions WHERE workspace_id = :ws AND digest = ANY(:digests) "
            "ORDER BY created_at, reason"
        ),
        {"ws": uow.workspace_id, "digests": sorted(holders)},
    )
    for row in rows:
        entry = _suppression(row)
        for position in holders[bytes(row.digest)]:
            found[position].append(entry)
    return found
