"""The SENT outcomes of the batches sending at once in a process, committed together.

Each batch records a message's outcome, committed, before it sends its next
message, so that a crash re-sends at most one message a batch. A commit a
message costs a round trip and a statement's overhead in the worker and in
PostgreSQL alike. Batches that record while another batch's write is under
way wait together, and the first of them, once that write ends, writes them
all in one statement: each batch still waits for its own commit, and an idle
process waits for nothing (bench/README.md, "Sending").

A group's error is the error of each of its members, as it would have been
had each written alone.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from delivery.sending import repository
from domain.uow import Autocommit


@dataclass
class _Sent:
    delivery_id: UUID
    message_id: str
    at: datetime
    # True once committed by another; False: the one waiting is to write the group.
    turn: asyncio.Future[bool]


@dataclass
class _Group:
    waiting: list[_Sent] = field(default_factory=list)
    writing: bool = False


class SentRecords:
    """One per worker process (`pipeline.Sending`); groups are per workspace."""

    def __init__(self) -> None:
        self._groups: dict[UUID, _Group] = {}

    async def record(
        self, out: Autocommit, workspace_id: UUID, delivery_id: UUID, message_id: str, at: datetime
    ) -> None:
        """Record the delivery SENT; returns once committed, on `out` or on another batch's."""
        group = self._groups.setdefault(workspace_id, _Group())
        mine = _Sent(delivery_id, message_id, at, asyncio.get_running_loop().create_future())
        group.waiting.append(mine)
        if group.writing and await mine.turn:
            return
        group.writing = True
        batch, group.waiting = group.waiting, []
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

    def _next(self, workspace_id: UUID, group: _Group) -> None:
        """Hand the writing on to the first still waiting who came during this write, or stop.

        Outcomes whose batches all stopped waiting (cancelled) go unwritten,
        as in a crash: their deliveries are sent again when their lease ends.
        """
        for waiting in group.waiting:
            if not waiting.turn.done():
                waiting.turn.set_result(False)
                return
        group.writing = False
        del self._groups[workspace_id]
