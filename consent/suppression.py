"""The suppression list, keyed by keyed hashes of identifiers so that it survives erasure."""

from collections.abc import Sequence
from dataclasses import dataclass

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
    return await add_many(
        uow, actor, [Request(digests, channel, purpose, reason, source, object_id)]
    )


@dataclass(frozen=True)
class Request:
    """One person's identifiers to suppress, as `add` takes them."""

    digests: Sequence[tuple[str, bytes]]
    channel: str
    purpose: str
    reason: SuppressionReason
    source: str
    object_id: object


async def add_many(uow: UnitOfWork, actor: audit.Actor, requests: Sequence[Request]) -> int:
    """`add` for many people at once: one insert and one write of their audit entries."""
    rows = [
        suppressions.NewEntry(kind, digest, r.channel, r.purpose, r.reason, r.source)
        for r in requests
        for kind, digest in r.digests
    ]
    if not rows:
        return 0
    added = await suppressions.insert_rows(uow, rows, at=uow.clock.now())
    await audit.record_many(
        uow, actor, "suppression.added", object_type="profile",
        items=[(r.object_id, {
            "reason": r.reason.value, "channel": r.channel, "purpose": r.purpose,
            "source": r.source, "identifier_kinds": sorted({k for k, _ in r.digests}),
        }) for r in requests if r.digests],
    )  # fmt: skip
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
