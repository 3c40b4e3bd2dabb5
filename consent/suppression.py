"""The suppression list, keyed by keyed hashes of identifiers so that it survives erasure."""

from collections.abc import Sequence

from consent import audit
from consent.model import LIFTABLE_REASONS, Suppression, SuppressionReason
from consent.repository import suppressions
from domain.errors import ValidationError
from domain.uow import UnitOfWork


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
    added = await suppressions.insert_many(
        uow,
        digests,
        channel=channel,
        purpose=purpose,
        reason=reason,
        source=source,
        at=uow.clock.now(),
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
    return added


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
    lifted = await suppressions.delete_for(uow, digests, reason)
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
    return await suppressions.for_many(uow, subjects)
