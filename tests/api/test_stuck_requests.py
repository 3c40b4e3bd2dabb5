"""Large batches are answered in seconds, and a request that is stuck holds up nobody else.

Over real HTTP, with the app's own pool and timeouts. A request is held
stuck by an outside transaction that holds the lock of one of its
identifiers, as a slow batch of another process would.
"""

import asyncio
import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import httpx
import orjson
import psycopg

from cdp.model import Identifier
from cdp.queries import lock_key
from domain.workspaces import CreatedWorkspace
from tests.conftest import make_settings
from tests.support.server import serving

MAX_BATCH_BYTES = 500 * 1024


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _tracks(count: int, prefix: str) -> list[dict[str, str]]:
    return [{"type": "track", "userId": f"{prefix}{i}", "event": "E"} for i in range(count)]


def _at_the_cap() -> bytes:
    """The largest batch of distinct users' track calls that fits under the size cap."""
    low, high = 1, 20_000
    while low < high:
        middle = (low + high + 1) // 2
        if len(orjson.dumps({"batch": _tracks(middle, "c")})) <= MAX_BATCH_BYTES:
            low = middle
        else:
            high = middle - 1
    return orjson.dumps({"batch": _tracks(low, "c")})


def _events(database_url: str, workspace_id: UUID) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE workspace_id = %s", (workspace_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


@contextmanager
def _holding(database_url: str, workspace_id: UUID, user_id: str) -> Iterator[None]:
    """An outside transaction that holds the lock of one user id until the block ends."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s)",
            (lock_key(workspace_id, Identifier("user_id", user_id)),),
        )
        yield
        conn.rollback()


async def _post(client: httpx.AsyncClient, path: str, key: str, body: bytes) -> httpx.Response:
    headers = {**_auth(key), "Content-Type": "application/json"}
    return await client.post(path, content=body, headers=headers)


def _track(user_id: str) -> bytes:
    return orjson.dumps({"userId": user_id, "event": "Clicked"})


def test_a_batch_of_7500_and_one_at_the_size_cap_are_answered_while_others_are_served(
    database_url: str, workspace: CreatedWorkspace, other_workspace: CreatedWorkspace
) -> None:
    big = orjson.dumps({"batch": _tracks(7_500, "u")})
    capped = _at_the_cap()
    assert len(capped) > MAX_BATCH_BYTES - 100

    async def run(base: str) -> tuple[list[httpx.Response], float]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            started = time.monotonic()
            large = asyncio.gather(
                _post(client, "/v1/batch", workspace.write_key, big),
                _post(client, "/v1/batch", workspace.write_key, capped),
            )
            small = asyncio.gather(
                *(
                    _post(client, "/v1/track", key, _track(f"small-{i}"))
                    for i in range(5)
                    for key in (workspace.write_key, other_workspace.write_key)
                )
            )
            responses = [*await large, *await small]
            return responses, time.monotonic() - started

    with serving(make_settings(database_url), database_url) as base:
        responses, seconds = asyncio.run(run(base))
    assert [r.status_code for r in responses] == [200] * len(responses), [
        r.text for r in responses if r.status_code != 200
    ]
    assert seconds < 20
    capped_count = len(orjson.loads(capped)["batch"])
    assert _events(database_url, workspace.workspace.id) == 7_500 + capped_count + 5
    assert _events(database_url, other_workspace.workspace.id) == 5


def test_a_stuck_request_holds_up_neither_its_key_nor_other_workspaces(
    database_url: str, workspace: CreatedWorkspace, other_workspace: CreatedWorkspace
) -> None:
    ws = workspace.workspace.id

    async def run(base: str) -> tuple[list[int], float, int]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            with _holding(database_url, ws, "stuck"):
                stuck = asyncio.create_task(
                    _post(client, "/v1/track", workspace.write_key, _track("stuck"))
                )
                await asyncio.sleep(0.3)
                started = time.monotonic()
                others = await asyncio.gather(
                    _post(client, "/v1/track", workspace.write_key, _track("free-1")),
                    _post(
                        client,
                        "/v1/batch",
                        workspace.write_key,
                        orjson.dumps({"batch": _tracks(50, "free-batch-")}),
                    ),
                    _post(client, "/v1/track", other_workspace.write_key, _track("stuck")),
                )
                waited = time.monotonic() - started
                assert not stuck.done(), "the held request was not stuck"
            released = await stuck
            return [r.status_code for r in others], waited, released.status_code

    settings = make_settings(database_url, db_lock_timeout=20.0)
    with serving(settings, database_url) as base:
        statuses, waited, released = asyncio.run(run(base))
    assert statuses == [200, 200, 200]
    assert waited < 10
    assert released == 200
    assert _events(database_url, ws) == 1 + 50 + 1
    assert _events(database_url, other_workspace.workspace.id) == 1


def test_a_request_stuck_past_the_lock_timeout_is_a_503_that_stores_nothing(
    database_url: str, workspace: CreatedWorkspace
) -> None:
    ws = workspace.workspace.id

    async def run(base: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            with _holding(database_url, ws, "stuck"):
                return await _post(client, "/v1/track", workspace.write_key, _track("stuck"))

    settings = make_settings(database_url, db_lock_timeout=0.5)
    with serving(settings, database_url) as base:
        response = asyncio.run(run(base))
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "retry" in response.json()["error"]
    assert _events(database_url, ws) == 0


def test_a_request_the_database_never_answers_times_out_with_a_503(
    database_url: str, workspace: CreatedWorkspace
) -> None:
    ws = workspace.workspace.id

    async def run(base: str) -> tuple[httpx.Response, float]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            with _holding(database_url, ws, "stuck"):
                started = time.monotonic()
                response = await _post(client, "/v1/track", workspace.write_key, _track("stuck"))
                return response, time.monotonic() - started

    # No server-side lock timeout: only the request's own deadline ends the wait.
    settings = make_settings(database_url, db_lock_timeout=0, ingest_timeout=1.0)
    with serving(settings, database_url) as base:
        response, seconds = asyncio.run(run(base))
    assert response.status_code == 503
    assert seconds < 8
    assert _events(database_url, ws) == 0
