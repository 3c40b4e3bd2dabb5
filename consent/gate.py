"""The one contact gate. Delivery asks nothing else before it sends."""

from collections.abc import Sequence
from datetime import datetime

from consent import ledger, suppression
from consent.model import Contactability, check_name, decide
from domain.personal_data import Subject
from domain.uow import UnitOfWork


async def is_contactable(
    uow: UnitOfWork, subject: Subject, *, channel: str, purpose: str, at: datetime | None = None
) -> Contactability:
    """May this subject be contacted on `channel` for `purpose` at `at` (now by default)?

    `subject.digests` must hold the keyed hashes of its identifiers: an erased,
    restricted or unsubscribed address stays suppressed whichever profile it
    reappears on.
    """
    [answer] = await contactability(uow, [subject], channel=channel, purpose=purpose, at=at)
    return answer


async def contactability(
    uow: UnitOfWork,
    subjects: Sequence[Subject],
    *,
    channel: str,
    purpose: str,
    at: datetime | None = None,
) -> list[Contactability]:
    """`is_contactable` for many subjects in two statements, in the order given.

    Each subject's current records as of `at` come in one statement, its own
    and the `marketing` record among them, so the rule of `decide` (own record
    first, else `marketing`) needs no further query. Any other place that
    decides contactability in bulk must follow that same rule.
    """
    channel = check_name(channel, "channel")
    purpose = check_name(purpose, "purpose")
    when = at or uow.clock.now()
    records = await ledger.current_for_many(uow, [s.profile_ids for s in subjects], at=when)
    entries = await suppression.entries_for_many(uow, [s.digests for s in subjects])
    return [
        decide(
            channel=channel,
            purpose=purpose,
            records=current,
            suppressions=[s for s in suppressions if s.created_at <= when],
        )
        for current, suppressions in zip(records, entries, strict=True)
    ]
