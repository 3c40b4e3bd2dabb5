"""The one contact gate. Delivery asks nothing else before it sends."""

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
    channel = check_name(channel, "channel")
    purpose = check_name(purpose, "purpose")
    when = at or uow.clock.now()
    records = await ledger.current(uow, subject.profile_ids, at=when)
    consent = next((r for r in records if r.purpose == purpose and r.channel == channel), None)
    entries = [s for s in await suppression.entries(uow, subject.digests) if s.created_at <= when]
    return decide(channel=channel, purpose=purpose, consent=consent, suppressions=entries)
