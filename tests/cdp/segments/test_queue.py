"""The upkeep queue: a row per change, claimed oldest first, about a batch's worth of profiles at a time."""

import uuid

from cdp.segments import repository, services
from cdp.segments import upkeep as _upkeep  # noqa: F401 - registers the change listener
from domain import changes
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow
from tests.conftest import new_workspace

_SEGMENT = {"trait": "plan", "op": "eq", "value": "pro"}


def _queue(database_url: str, ws: uuid.UUID, profiles: list[uuid.UUID], reason: str) -> None:
    async def work(uow: UnitOfWork) -> None:
        changes.touched(uow, profiles, reason)  # sent with the commit

    in_uow(database_url, ws, work)


def _claim(database_url: str, ws: uuid.UUID, limit: int) -> dict[uuid.UUID, frozenset[str]]:
    async def work(uow: UnitOfWork) -> dict[uuid.UUID, frozenset[str]]:
        return await repository.claim_pending(uow, limit)

    return in_uow(database_url, ws, work)


def _with_a_segment(database_url: str, name: str) -> uuid.UUID:
    from consent import audit

    ws = new_workspace(database_url, name).workspace.id

    async def work(uow: UnitOfWork) -> None:
        data = services.SegmentInput(name="pro", description=None, definition=_SEGMENT)
        await services.create(uow, audit.Actor.system("test"), data)

    in_uow(database_url, ws, work)
    return ws


def test_a_change_is_one_queued_row_naming_each_profile_with_its_reasons(database_url):
    ws = _with_a_segment(database_url, "queue-rows")
    first, second = uuid.uuid4(), uuid.uuid4()
    _queue(database_url, ws, [first, second], changes.TRAITS)
    _queue(database_url, ws, [first], changes.CONSENT)
    claimed = _claim(database_url, ws, 100)
    assert claimed == {
        first: frozenset({changes.TRAITS, changes.CONSENT}),
        second: frozenset({changes.TRAITS}),
    }
    assert _claim(database_url, ws, 100) == {}


def test_a_claim_takes_the_oldest_changes_up_to_about_the_limit(database_url):
    ws = _with_a_segment(database_url, "queue-order")
    batches = [[uuid.uuid4() for _ in range(3)] for _ in range(4)]
    for batch in batches:
        _queue(database_url, ws, batch, changes.TRAITS)
    # 3 + 3 profiles: the second change starts below the limit of 5, the third does not.
    assert set(_claim(database_url, ws, 5)) == {*batches[0], *batches[1]}
    assert set(_claim(database_url, ws, 1)) == set(batches[2])
    assert set(_claim(database_url, ws, 100)) == set(batches[3])


def test_nothing_is_queued_in_a_workspace_without_segments(database_url):
    ws = new_workspace(database_url, "queue-none").workspace.id
    _queue(database_url, ws, [uuid.uuid4()], changes.TRAITS)
    assert _claim(database_url, ws, 100) == {}
