"""Requests that arrive while earlier ones are being stored are stored together.

Every transaction has a fixed cost, paid in the server and in PostgreSQL
alike: a round trip for the reads, one for the write and the commit, a
statement for each kind of row, a WAL flush. Under load, requests for the same
key queue behind the ones being stored, and the queue is then stored in one
transaction, so that cost is paid once for the lot. An idle key waits for
nothing: a request that finds no transaction of its key running starts one at
once, alone.

A transaction that runs for longer than `stall_after` (it waits on a lock, or
on a database that does not answer) does not hold up its key: the next
request starts another transaction beside it, up to `max_concurrency`.

A request is answered only once the transaction that holds its items has
committed. When a group fails, each of its requests is stored again alone, so
that it meets only its own error and nothing of another request is lost with
it; an error that belongs to the key itself (a bad write key) is every
member's answer.
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
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
        stall_after: float | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        """`store(key, items)` stores items in one transaction; at most
        `concurrency` of them run at once for a key, and a group holds at most
        `max_items` items, unless its first request alone holds more. While
        one of them has run for more than `stall_after` seconds, up to
        `max_concurrency` may run.
        """
        if concurrency < 1 or max_items < 1:
            raise ValueError("concurrency and max_items must be at least 1")
        if stall_after is not None and stall_after <= 0:
            raise ValueError("stall_after must be positive")
        self._store = store
        self._concurrency = concurrency
        self._max_concurrency = max(concurrency, max_concurrency or concurrency)
        self._stall_after = stall_after
        self._max_items = max_items
        self._shared_errors = shared_errors
        self._queues: dict[str, deque[_Waiting[T]]] = {}
        self._running: dict[str, int] = {}
        # When each transaction now running for a key began (the loop's clock).
        self._began: dict[str, list[float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, key: str, items: Sequence[T]) -> None:
        """Store `items` under `key`; returns once they are committed, or raises their error."""
        waiting = _Waiting(items, asyncio.get_running_loop().create_future())
        self._queues.setdefault(key, deque()).append(waiting)
        running = self._running.get(key, 0)
        if running < self._concurrency or self._stalled(key):
            self._start_drain(key)
        elif self._stall_after is not None:
            # Look again once the running transactions may have stalled.
            asyncio.get_running_loop().call_later(self._stall_after, self._unstall, key)
        await waiting.done

    def _start_drain(self, key: str) -> None:
        self._running[key] = self._running.get(key, 0) + 1
        task = asyncio.create_task(self._drain(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _stalled(self, key: str) -> bool:
        if self._stall_after is None or self._running.get(key, 0) >= self._max_concurrency:
            return False
        now = asyncio.get_running_loop().time()
        # A little slack: a timer set `stall_after` from now must find it passed.
        return any(now - began >= self._stall_after * 0.99 for began in self._began.get(key, ()))

    def _unstall(self, key: str) -> None:
        if self._queues.get(key) and self._stalled(key):
            self._start_drain(key)

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

    @contextlib.contextmanager
    def _running_since(self, key: str) -> Iterator[None]:
        began = self._began.setdefault(key, [])
        now = asyncio.get_running_loop().time()
        began.append(now)
        try:
            yield
        finally:
            began.remove(now)
            if not began:
                self._began.pop(key, None)

    async def _stored(self, key: str, group: list[_Waiting[T]]) -> None:
        with self._running_since(key):
            await self._store(key, [item for waiting in group for item in waiting.items])

    async def _commit(self, key: str, group: list[_Waiting[T]]) -> None:
        try:
            await self._stored(key, group)
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
