"""Segment-spec ingest: tracking-API messages become profile-store operations.

1. messages whose id the workspace has seen are dropped;
2. each message becomes an operation (its identifiers, traits and event);
3. the profile store locks, resolves and writes the batch (`cdp.profile_store`).
"""

from collections.abc import Mapping, Sequence

from cdp import identifiers as ids
from cdp import queries
from cdp.model import ANONYMOUS_ID, USER_ID, Identifier, Message
from cdp.profile_store import Operation, read_locked, resolve_and_write
from domain.uow import Statement, UnitOfWork


def message_identifiers(message: Message) -> tuple[tuple[Identifier, ...], tuple[Identifier, ...]]:
    """(identifiers, either-or candidates) carried by a Segment message."""
    found: list[Identifier] = []
    either: tuple[Identifier, ...] = ()
    if message.user_id:
        found.append(ids.normalize(USER_ID, message.user_id))
    if message.anonymous_id:
        found.append(ids.normalize(ANONYMOUS_ID, message.anonymous_id))
    if message.type == "identify":
        for kind in ("email", "phone"):
            identifier = ids.maybe(kind, message.traits.get(kind))
            if identifier is not None:
                found.append(identifier)
    if message.type == "alias" and message.previous_id:
        either = (
            ids.normalize(USER_ID, message.previous_id),
            ids.normalize(ANONYMOUS_ID, message.previous_id),
        )
    return tuple(found), either


def operations_for(
    messages: Sequence[Message], identified_by: Mapping[str, Identifier] | None = None
) -> list[Operation]:
    """An operation per message; `identified_by` names, by message id, whose it is instead."""
    operations = []
    for message in messages:
        found, either = message_identifiers(message)
        if identified_by is not None:
            found, either = (identified_by[message.message_id],), ()
        operations.append(
            Operation(
                identifiers=found,
                trigger=f"message:{message.message_id}",
                at=message.timestamp,
                traits=message.traits if message.type == "identify" and message.traits else None,
                event=message,
                either=either,
                group=(message.group_id, message.traits)
                if message.type == "group" and message.group_id
                else None,
            )
        )
    return operations


def _unique(messages: Sequence[Message]) -> list[Message]:
    unique: dict[str, Message] = {}
    for message in messages:
        unique.setdefault(message.message_id, message)
    return list(unique.values())


async def ingest(
    uow: UnitOfWork,
    messages: Sequence[Message],
    *,
    require: Statement | None = None,
    identified_by: Mapping[str, Identifier] | None = None,
) -> None:
    """Store Segment messages; a message id seen before is accepted and not stored twice.

    Two round trips, the second shared with the caller's commit:
    - `require` (a check that raises, such as a write-key check), the claim of
      the message ids, the identifier locks and the reads go in one; a
      failing check stops the rest before it runs. The identifiers of a
      message already seen are locked and read for nothing: that is rare,
      and cheaper than a round trip;
    - the write is deferred to the unit of work's commit, so the locks are
      held for one round trip less.

    `identified_by` is for events the server records itself (an email
    complaint, say): each message belongs to the profile holding the
    identifier given for its id, not to the ids it carries.
    """
    unique = _unique(messages)
    if not unique:
        return
    claim = queries.claim_message_ids(uow.workspace_id, [m.message_id for m in unique])
    operations = operations_for(unique, identified_by)
    before = [claim] if require is None else [require, claim]
    *_, claimed, read = await read_locked(uow, operations, before=before)
    fresh = {row.message_id for row in claimed}
    if len(fresh) < len(unique):
        operations = [op for op, m in zip(operations, unique, strict=True) if m.message_id in fresh]
    if operations:
        await resolve_and_write(uow, operations, read, answer=False)
