"""The SENT outcomes of the batches sending at once in a process, committed together.

A batch's message goes out only once the message before it is recorded,
committed, so that a crash sends again at most one message a batch. A
commit a message costs a round trip and a statement's overhead in the
worker and in PostgreSQL alike. So a batch queues its outcome (`submit`)
and makes its next message while the outcome waits to be written; then it
waits for it (`wait`). The first batch to wait while no write is under way
writes every outcome queued by then, in one statement; those that come to
wait during that write wait for the next, which the first of them writes.
Each batch still sends its next message only once its own outcome is
committed, and an idle process waits for nothing (bench/README.md,
"Sending").

A group's error is the error of each of its members, as it would have been
had each written alone.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from delivery.sending import repository
from domain.uow import Autocommit


@dataclass(eq=False)
class Queued:
    """A SENT outcome queued for the next write (`SentRecords.submit`)."""

    delivery_id: UUID
    message_id: str
    at: datetime
    group: "_Group"
    # True once committed by another; False: the one waiting is to write the group.
    turn: asyncio.Future[bool]
    waiting: bool = False  # its batch waits for it now (`SentRecords.wait`)


@dataclass(eq=False)
class _Group:
    queued: list[Queued] = field(default_factory=list)
    writing: bool = False


class SentRecords:
    """One per worker process (`pipeline.Sending`); groups are per workspace."""

    def __init__(self) -> None:
        self._groups: dict[UUID, _Group] = {}

    def submit(
        self, workspace_id: UUID, delivery_id: UUID, message_id: str, at: datetime
    ) -> Queued:
        """Queue the delivery's SENT outcome: the next write carries it, whichever batch writes."""
        group = self._groups.setdefault(workspace_id, _Group())
        mine = Queued(delivery_id, message_id, at, group,
                     asyncio.get_running_loop().create_future())  # fmt: skip
        group.queued.append(mine)
        return mine

    async def wait(self, out: Autocommit, workspace_id: UUID, mine: Queued) -> None:
        """Return once `mine` is committed: by a write under way or to come, or on `out` by this
        batch, with every outcome queued by then."""
        group = mine.group
        mine.waiting = True
        if mine.turn.done():
            if mine.turn.result():  # written, or its write's error raised here
                return
        elif group.writing and await mine.turn:
            return
        group.writing = True
        batch, group.queued = group.queued, []
        try:
            await repository.record_sent(
                out, workspace_id, [(s.delivery_id, s.message_id, s.at) for s in batch]
            )
        except BaseException as error:
            for other in batch:
                if other is not mine and not other.turn.done():
                    other.turn.set_exception(error)
            raise
        finally:
            self._next(workspace_id, group)
        for other in batch:
            if other is not mine and not other.turn.done():
                other.turn.set_result(True)

    async def record(
        self, out: Autocommit, workspace_id: UUID, delivery_id: UUID, message_id: str, at: datetime
    ) -> None:
        """Record the delivery SENT; returns once committed, on `out` or on another batch's."""
        await self.wait(out, workspace_id, self.submit(workspace_id, delivery_id, message_id, at))

    def _next(self, workspace_id: UUID, group: _Group) -> None:
        """Hand the writing on to the first batch that came to wait during this write, or stop.

        A batch that queued an outcome and is not yet waiting for it (it is
        preparing its next message) writes when it comes to wait, unless a
        write takes it first. Outcomes whose batches all stopped waiting
        (cancelled) are written by the next batch that writes, or, if none
        comes, go unwritten as in a crash: their deliveries are sent again
        when their lease ends.
        """
        for queued in group.queued:
            if queued.waiting and not queued.turn.done():
                queued.turn.set_result(False)
                return
        group.writing = False
        if not group.queued and self._groups.get(workspace_id) is group:
            del self._groups[workspace_id]
