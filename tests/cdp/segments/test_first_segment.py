"""The first segment of a workspace and the changes in flight when it is made: none is lost."""

import threading
import time
from typing import Any

from cdp.segments import repository, services
from cdp.segments.upkeep import PendingListener
from consent import audit
from domain import changes
from domain.uow import Statement, UnitOfWork
from tests.cdp.segments.support import in_uow
from tests.conftest import new_workspace
from tests.support import factories

ACTOR = audit.Actor.system("test")


def _pending(database_url: str, ws: Any) -> int:
    async def read(uow: UnitOfWork) -> int:
        rows = await uow.fetch("SELECT count(*) AS n FROM segment_pending", {})
        return int(rows[0].n)

    return in_uow(database_url, ws, read)


def _pro_profile_change(database_url: str, name: str) -> tuple[Any, list[Statement]]:
    """A workspace with one profile on the pro plan, and the statements a change to its traits
    sends (`PendingListener`), not yet sent."""
    ws = new_workspace(database_url, name).workspace.id
    with factories.seeding(database_url) as db:
        pid = factories.profile(db, ws, traits={"plan": "pro"})
        db.commit()
    return ws, PendingListener().statements(ws, {pid: frozenset({changes.TRAITS})})


async def _make_pro_segment(uow: UnitOfWork) -> None:
    await services.create(uow, ACTOR, services.SegmentInput(
        "pro", None, {"trait": "plan", "op": "eq", "value": "pro"}))  # fmt: skip


def test_a_segment_made_while_a_change_is_in_flight_waits_for_it(database_url):
    ws, notices = _pro_profile_change(database_url, "first-segment")
    created = threading.Event()

    async def change_then_wait(uow: UnitOfWork) -> None:
        # A change's own statements, sent; it has seen no segment, and has not committed.
        await uow.pipeline(*notices)
        thread.start()
        time.sleep(0.5)
        assert not created.is_set(), "the segment was made while the change was in flight"

    def create() -> None:
        in_uow(database_url, ws, _make_pro_segment)
        created.set()

    thread = threading.Thread(target=create)
    in_uow(database_url, ws, change_then_wait)
    thread.join(10)
    assert created.is_set()
    assert _pending(database_url, ws) == 0  # the change came before the segment: not queued

    # A change made after the segment exists is queued for it.
    async def change(uow: UnitOfWork) -> None:
        await uow.pipeline(*notices)

    in_uow(database_url, ws, change)
    assert _pending(database_url, ws) == 1


def test_a_change_that_comes_while_the_segment_is_made_waits_and_is_queued(database_url):
    ws, notices = _pro_profile_change(database_url, "first-segment-2")
    changed = threading.Event()

    def change() -> None:
        async def send(uow: UnitOfWork) -> None:
            await uow.pipeline(*notices)

        in_uow(database_url, ws, send)
        changed.set()

    thread = threading.Thread(target=change)

    async def make_then_wait(uow: UnitOfWork) -> None:
        await _make_pro_segment(uow)
        thread.start()
        time.sleep(0.5)
        assert not changed.is_set(), "the change went ahead of a segment being made"

    in_uow(database_url, ws, make_then_wait)
    thread.join(10)
    assert changed.is_set()
    # It checked for segments after the segment committed, so it was queued.
    assert _pending(database_url, ws) == 1


def test_the_upkeep_job_takes_its_request_only_after_the_changes_in_flight_commit(database_url):
    """A change that finds the workspace's job queued queues no other: the job must then see
    its row, so the job's taking of the request waits for it to commit."""
    ws, notices = _pro_profile_change(database_url, "upkeep-request")
    in_uow(database_url, ws, _make_pro_segment)

    async def change(uow: UnitOfWork) -> None:
        await uow.pipeline(*notices)

    in_uow(database_url, ws, change)  # queues the job and its request
    claimed: list[Any] = []
    taken = threading.Event()

    async def take_then_claim(uow: UnitOfWork) -> None:
        await repository.take_upkeep_request(uow)
        taken.set()
        await uow.commit()
        claimed.extend(await repository.claim_pending(uow, 100))

    async def in_flight(uow: UnitOfWork) -> None:
        claimed.extend(await repository.claim_pending(uow, 100))  # the first change's row
        await uow.commit()
        await uow.pipeline(*notices)
        thread.start()
        time.sleep(0.5)
        assert not taken.is_set(), "the request was taken while a change was in flight"

    thread = threading.Thread(target=lambda: in_uow(database_url, ws, take_then_claim))
    in_uow(database_url, ws, in_flight)
    thread.join(10)
    assert taken.is_set()
    assert len(claimed) == 2, "the job did not see the change that found it queued"
