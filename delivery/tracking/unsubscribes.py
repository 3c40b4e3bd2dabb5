"""An unsubscribe counted against the message it came from, and noted on the profile.

The one-click link names the person and the purpose, not the message: the
unsubscribe is the last message of that purpose sent to the person within
the attribution window. A reply to the mailto address names its message. It counts once per message, and lands as an
`Unsubscribed` event on the profile.
"""

from uuid import UUID

from cdp import ingest, queries
from cdp.model import Identifier, Message
from delivery.tracking import conversions, repository
from delivery.tracking.processing import hour, message_about
from domain.uow import UnitOfWork

UNSUBSCRIBED = "Unsubscribed"


async def record(uow: UnitOfWork, profile_id: UUID, purpose: str, *, source: str) -> bool:
    """Count the unsubscribe against its message; False when there is none to count."""
    now = uow.clock.now()
    found = await queries.profiles_by_id(uow, [profile_id])
    if profile_id not in found:
        return False
    survivor = found[profile_id].id
    merged = await queries.merged_ids(uow, [survivor])
    sent = await repository.last_sent(uow, merged[survivor], purpose,
                                      now - conversions.listener.window)  # fmt: skip
    return sent is not None and await _count(uow, sent, purpose, source)


async def record_delivery(uow: UnitOfWork, delivery_id: UUID, purpose: str, *,
                          source: str) -> bool:  # fmt: skip
    """Count an unsubscribe that names its message (a reply to the mailto address)."""
    sent = (await repository.deliveries(uow, [delivery_id])).get(delivery_id)
    return sent is not None and await _count(uow, sent, purpose, source)


async def _count(uow: UnitOfWork, sent: repository.Sent, purpose: str, source: str) -> bool:
    now = uow.clock.now()
    if not await repository.mark_unsubscribed(uow, sent, now):
        return False
    uow.defer(repository.add_deltas(uow, [
        repository.Delta(sent.campaign_id, sent.variant, hour(now), {"unsubscribed": 1}),
    ]))  # fmt: skip
    email = (await queries.current_emails(uow, [sent.profile_id])).get(sent.profile_id)
    if email is not None:  # the erased have none
        event = Message(type="track", message_id=f"unsubscribe-{sent.delivery_id}",
                        timestamp=now, received_at=now, name=UNSUBSCRIBED,
                        properties=message_about(sent) | {"purpose": purpose, "source": source})  # fmt: skip
        await ingest.ingest(uow, [event], identified_by={
            event.message_id: Identifier("email", email)})  # fmt: skip
    return True
