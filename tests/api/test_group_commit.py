"""Grouping the requests of a key that arrive while one of its transactions runs.

The store here is a plain coroutine that records its calls: what is under
test is who waits for what, and which items travel together. The Segment
routes' own tests run the real store against PostgreSQL.
"""

import asyncio
from typing import Any

import pytest

from api.http.group_commit import GroupCommit


class RevokedKeyError(Exception):
    pass


class Recorder:
    """A store that records each call, can be held open, and fails on "bad" items."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.running = 0
        self.most_running = 0

    async def __call__(self, key: str, items: list[str]) -> None:
        self.calls.append((key, items))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.release.wait()
            if "bad" in items:
                raise ValueError("bad item")
            if "revoked" in items:
                raise RevokedKeyError("the key is revoked")
        finally:
            self.running -= 1


async def _started(store: Recorder, calls: int) -> None:
    for _ in range(100):
        if len(store.calls) >= calls:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"only {len(store.calls)} store calls started, expected {calls}")


async def _busy(**options: Any) -> tuple[Recorder, GroupCommit[str], asyncio.Task[None]]:
    """A store held open, and a first request of key "k" running in it."""
    store = Recorder()
    store.release.clear()
    groups = GroupCommit(store, concurrency=1, **options)
    first = asyncio.create_task(groups.submit("k", ["a"]))
    await _started(store, 1)
    return store, groups, first


def _groups(store: Recorder) -> list[list[str]]:
    return [items for _, items in store.calls]


async def test_a_request_for_an_idle_key_is_stored_at_once_and_alone() -> None:
    store = Recorder()
    groups = GroupCommit(store, concurrency=1, max_items=100)
    await asyncio.wait_for(groups.submit("k", ["a", "b"]), 1)
    assert store.calls == [("k", ["a", "b"])]


async def test_requests_that_arrive_meanwhile_form_the_next_group_in_order() -> None:
    store, groups, first = await _busy(max_items=100)
    later = [asyncio.create_task(groups.submit("k", [x, x + "2"])) for x in "bcd"]
    await asyncio.sleep(0)
    assert not any(t.done() for t in [first, *later])  # nobody answered before the commit
    store.release.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 1)
    assert _groups(store) == [["a"], ["b", "b2", "c", "c2", "d", "d2"]]


async def test_a_group_holds_at_most_max_items_unless_one_request_alone_is_bigger() -> None:
    store, groups, first = await _busy(max_items=3)
    later = [
        asyncio.create_task(groups.submit("k", items))
        for items in (["b", "c"], ["d", "e"], ["f", "g", "h", "i"], ["j"])
    ]
    await asyncio.sleep(0)
    store.release.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 1)
    assert _groups(store) == [["a"], ["b", "c"], ["d", "e"], ["f", "g", "h", "i"], ["j"]]


async def test_a_failed_group_is_stored_again_request_by_request() -> None:
    store, groups, first = await _busy(max_items=100)
    good = asyncio.create_task(groups.submit("k", ["b"]))
    bad = asyncio.create_task(groups.submit("k", ["bad"]))
    other = asyncio.create_task(groups.submit("k", ["c"]))
    await asyncio.sleep(0)
    store.release.set()
    await asyncio.wait_for(asyncio.gather(first, good, other), 1)
    with pytest.raises(ValueError, match="bad item"):
        await bad
    assert _groups(store) == [["a"], ["b", "bad", "c"], ["b"], ["bad"], ["c"]]


async def test_an_error_of_the_key_itself_is_every_members_answer_without_retries() -> None:
    store, groups, first = await _busy(max_items=100, shared_errors=(RevokedKeyError,))
    members = [asyncio.create_task(groups.submit("k", items)) for items in (["b"], ["revoked"])]
    await asyncio.sleep(0)
    store.release.set()
    await first
    for member in members:
        with pytest.raises(RevokedKeyError):
            await member
    assert _groups(store) == [["a"], ["b", "revoked"]]


async def test_each_key_has_its_own_transactions_up_to_the_concurrency() -> None:
    store = Recorder()
    store.release.clear()
    groups = GroupCommit(store, concurrency=2, max_items=100)
    tasks = [asyncio.create_task(groups.submit(key, [f"{key}0"])) for key in "xy"]
    await _started(store, 2)
    tasks += [asyncio.create_task(groups.submit(key, [f"{key}1"])) for key in "xy"]
    await _started(store, 4)
    tasks += [
        asyncio.create_task(groups.submit(key, [f"{key}{i}"])) for i in (2, 3) for key in "xy"
    ]
    for _ in range(10):
        await asyncio.sleep(0)
    assert store.running == 4  # two for each key; the rest wait
    store.release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert store.most_running == 4
    for key in "xy":
        assert [items for k, items in store.calls if k == key] == [
            [f"{key}0"],
            [f"{key}1"],
            [f"{key}2", f"{key}3"],
        ]


async def test_a_request_cancelled_while_it_waits_is_left_out() -> None:
    store, groups, first = await _busy(max_items=100)
    gone = asyncio.create_task(groups.submit("k", ["b"]))
    stays = asyncio.create_task(groups.submit("k", ["c"]))
    await asyncio.sleep(0)
    gone.cancel()
    store.release.set()
    await asyncio.wait_for(asyncio.gather(first, stays), 1)
    assert gone.cancelled()
    assert _groups(store) == [["a"], ["c"]]


def test_limits_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Recorder(), concurrency=0, max_items=10)
