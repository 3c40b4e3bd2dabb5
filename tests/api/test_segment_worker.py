"""Segments with a real worker on the real broker: computed after saving, a member within a second
of the event's commit, and gone after an erasure."""

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import gql
from tests.consent.support import track_batch
from tests.support.worker import running_worker

# The promise: a member within one second of the event's commit. Waits for
# other things (the worker's first full evaluation) allow much longer.
FRESHNESS_SECONDS = 1.0
PATIENCE_SECONDS = 20.0


@pytest.fixture(scope="module")
def worker(database_url: str) -> Iterator[list[str]]:
    with running_worker(database_url) as lines:
        yield lines


def _until(check: Callable[[], Any], timeout: float = PATIENCE_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.02)


def _segment(client, token: str, segment_id: str) -> dict[str, Any]:
    body = gql(
        client,
        "query($id: ID!) { segment(id: $id) { state size } }",
        {"id": segment_id},
        token=token,
    )
    found: dict[str, Any] = body["data"]["segment"]
    return found


def _member_names(client, token: str, user_id: str) -> set[str]:
    body = gql(
        client,
        'query($v: String!) { profile(identifier: {kind: "user_id", value: $v}) '
        "{ segments { name } } }",
        {"v": user_id},
        token=token,
    )
    found = body["data"]["profile"]
    return set() if found is None else {s["name"] for s in found["segments"]}


def test_a_tracked_event_makes_a_member_within_a_second(client, workspace, worker):
    token = workspace.api_token
    created = gql(
        client,
        "mutation($input: SegmentInput!) { createSegment(input: $input) { segment { id } } }",
        {"input": {"name": "Buyers", "definition": {"event": "Order Completed"}}},
        token=token,
    )
    segment_id = created["data"]["createSegment"]["segment"]["id"]
    _until(lambda: _segment(client, token, segment_id)["state"] == "READY")

    delays = []
    for _ in range(5):
        user = f"fresh-{uuid.uuid4().hex[:8]}"
        track_batch(
            client,
            workspace.write_key,
            [{"type": "track", "userId": user, "event": "Order Completed"}],
        )
        committed = time.monotonic()
        _until(lambda user=user: "Buyers" in _member_names(client, token, user))
        delays.append(time.monotonic() - committed)
    assert max(delays) <= FRESHNESS_SECONDS, delays
    assert _segment(client, token, segment_id)["size"] == 5


def test_an_erasure_removes_the_person_from_every_segment(client, workspace, worker):
    token = workspace.api_token
    email = f"gone-{uuid.uuid4().hex[:8]}@example.com"
    track_batch(client, workspace.write_key, [
        {"type": "identify", "userId": "gone-1", "traits": {"email": email, "plan": "pro"}},
    ])  # fmt: skip
    created = gql(
        client,
        "mutation($input: SegmentInput!) { createSegment(input: $input) { segment { id } } }",
        {"input": {"name": "Pro", "definition": {"trait": "plan", "op": "eq", "value": "pro"}}},
        token=token,
    )
    segment_id = created["data"]["createSegment"]["segment"]["id"]
    _until(lambda: _segment(client, token, segment_id) == {"state": "READY", "size": 1})
    erased = gql(
        client,
        'mutation($v: String!) { createDataSubjectRequest(input: {identifier: {kind: "email", '
        "value: $v}, type: ERASURE}) { dataSubjectRequest { id } errors { message } } }",
        {"v": email},
        token=token,
    )
    assert erased["data"]["createDataSubjectRequest"]["errors"] == []
    _until(lambda: _segment(client, token, segment_id)["size"] == 0)
    assert _member_names(client, token, "gone-1") == set()
