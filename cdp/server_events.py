"""Events the server records on profiles it knows by id, when they fold into nothing.

`Email Delivered` and `Email Bounced` belong to the profile a delivery was
sent to, and change none of its traits or computed values
(`traits.not_activity`): they can neither create nor merge a profile, so
ingest's general path (identifier locks, each owner's profile and identities
read, the resolver) would do work for nothing, for every message sent. Here
each profile's survivor is locked `FOR SHARE`, which waits for a merge or an
erasure under way (both lock their profiles `FOR UPDATE` first), and the
events are written as ingest writes them: a message id seen before is not
stored twice, and segments and journeys hear of each new event.
"""

from collections.abc import Sequence
from uuid import UUID

from cdp import queries, traits
from cdp.model import Message
from cdp.profile_store import event_rows
from domain import changes
from domain.ids import new_ids_text
from domain.uow import UnitOfWork

_ATTEMPTS = 5  # each retry follows a profile merged away while the lock waited


async def record(uow: UnitOfWork, events: Sequence[tuple[UUID, Message]]) -> int:
    """Store each (profile id, event) on the profile's survivor, written with the unit of
    work's commit; a profile since erased gets nothing. How many were stored."""
    unique: dict[str, tuple[UUID, Message]] = {}
    for profile_id, message in events:
        if message.type == "track" and traits.is_activity(message.name):
            raise ValueError(f"{message.name!r} changes its profile: it goes through ingest")
        unique.setdefault(message.message_id, (profile_id, message))
    if not unique:
        return 0
    ws = uow.workspace_id
    asked = [p for p, _ in unique.values()]
    claimed, locked = await uow.pipeline(
        queries.claim_message_ids(ws, list(unique)), queries.lock_survivors(ws, asked)
    )
    attempts = 1
    while any(row.moved for row in locked):
        if attempts == _ATTEMPTS:
            raise RuntimeError("profiles kept merging while their events waited")
        [locked] = await uow.pipeline(queries.lock_survivors(ws, asked))
        attempts += 1
    survivors = {row.asked: row.id for row in locked}
    fresh = {row.message_id for row in claimed}
    stored = [(survivors[p], m) for mid, (p, m) in unique.items()
              if mid in fresh and p in survivors]  # fmt: skip
    if not stored:
        return 0
    ids = new_ids_text(len(stored))
    write = queries.write_batch(
        ws, uow.clock.now(), created="[]", identities="[]", conflicts="[]",
        events=event_rows(stored, ids), groups="[]", updated="[]",
    )  # fmt: skip
    why: dict[UUID, set[str]] = {}
    for profile_id, message in stored:
        why.setdefault(profile_id, set()).add(changes.event(message.name))
    uow.defer(
        queries.ensure_partitions(stored),
        write,
        *changes.statements(ws, {p: frozenset(reasons) for p, reasons in why.items()}),
        *changes.event_statements(ws, changes.NewEvents(
            ids, [m.timestamp for _, m in stored], [p for p, _ in stored],
            [m.name for _, m in stored])),
    )  # fmt: skip
    return len(stored)
