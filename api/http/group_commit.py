"""Requests that arrive while earlier ones are being stored are stored together.

Every transaction has a fixed cost, paid in the server and in PostgreSQL
alike: a round trip for the reads, one for the write and the commit, a
statement for each kind of row, a WAL flush. Under load, requests for the same
key queue behind the ones being stored, and the queue is then stored in one
transaction, so that cost is paid once for the lot. An idle key waits for
nothing: a request that finds no transaction of its key running starts one at
once, alone.

A request is answered only once the transaction that holds its items has
committed. When a group fails, each of its requests is stored again alone, so
that it meets only its own error and nothing of another request is lost with
it; an error that belongs to the key itself (a bad write key) is every
member's answer.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

Store = Callable[[str, list[T]], Awaitable[None]]


@dataclass
class _Waiting(Generic[T]):
    items: Sequence[T]
    done: asyncio.Future[None]


class GroupCommit(Generic[T]):
    def __init__(
        self,
        store: Store[T],
        *,
        concurrency: int,
        max_items: int,
        shared_errors: tuple[type[Exception], ...] = (),
    ) -> None:
        """`store(key, items)` stores items in one transaction; at most
        `concurrency` of them run at once for a key, and a group holds at most
        `max_items` items, unless its first request alone holds more.
        """
        if concurrency < 1 or max_items < 1:
            raise ValueError("concurrency and max_items must be at least 1")
        self._store = store
        self._concurrency = concurrency
        self._max_items = max_items
        self._shared_errors = shared_errors
        self._queues: dict[str, deque[_Waiting[T]]] = {}
        self._running: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, key: str, items: Sequence[T]) -> None:
        """Store `items` under `key`; returns once they are committed, or raises their error."""
        waiting = _Waiting(items, asyncio.get_running_loop().create_future())
        self._queues.setdefault(key, deque()).append(waiting)
        running = self._running.get(key, 0)
        if running < self._concurrency:
            self._running[key] = running + 1
            task = asyncio.create_task(self._drain(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await waiting.done

    def _next_group(self, queue: deque[_Waiting[T]]) -> list[_Waiting[T]]:
        group: list[_Waiting[T]] = []
        count = 0
        while queue and (not group or count + len(queue[0].items) <= self._max_items):
            waiting = queue.popleft()
            if waiting.done.done():  # its request was cancelled while it waited
                continue
            count += len(waiting.items)
            group.append(waiting)
        return group

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                group = self._next_group(queue)
                if group:
                    await self._commit(key, group)
        finally:
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
                del self._queues[key]
                # Left only when this task was cancelled (the server is stopping).
                for waiting in queue:
                    waiting.done.cancel()

    async def _commit(self, key: str, group: list[_Waiting[T]]) -> None:
        try:
            await self._store(key, [item for waiting in group for item in waiting.items])
        except self._shared_errors as exc:
            _fail(group, exc)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
            if len(group) == 1:
                _fail(group, exc)
                return
            for waiting in group:
                await self._commit(key, [waiting])
        except BaseException:
            for waiting in group:
                waiting.done.cancel()
            raise
        else:
            for waiting in group:
                if not waiting.done.done():
                    waiting.done.set_result(None)


def _fail(group: list[_Waiting[T]], exc: Exception) -> None:
    for waiting in group:
        if not waiting.done.done():
            waiting.done.set_exception(exc)
