"""Concurrent Segment calls of one write key, stored in shared transactions, over real HTTP."""

import asyncio
import base64
import uuid

import httpx
import psycopg

from tests.support.server import serving


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def _identify_all(base: str, key: str, count: int, email: str) -> list[int]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/v1/identify",
                    json={
                        "anonymousId": f"device-{i}",
                        "traits": {"email": email},
                        "messageId": str(uuid.uuid4()),
                    },
                    headers=_auth(key),
                )
                for i in range(count)
            )
        )
    return [r.status_code for r in responses]


def test_fifty_identify_calls_at_once_give_one_profile_in_fewer_transactions(
    settings, database_url, workspace
):
    ws = workspace.workspace.id
    with serving(settings, database_url) as base:
        statuses = asyncio.run(_identify_all(base, workspace.write_key, 50, "crowd@example.com"))
    assert statuses == [200] * 50
    with psycopg.connect(database_url) as conn:
        live = conn.execute(
            "SELECT p.id FROM profiles p JOIN identities i ON i.workspace_id = p.workspace_id "
            "AND i.profile_id = p.id WHERE p.workspace_id = %s AND i.kind = 'email' "
            "AND p.merged_into IS NULL",
            (ws,),
        ).fetchall()
        assert len(live) == 1
        anonymous = conn.execute(
            "SELECT count(*) FROM identities WHERE workspace_id = %s AND profile_id = %s "
            "AND kind = 'anonymous_id'",
            (ws, live[0][0]),
        ).fetchone()
        assert anonymous == (50,)
        # Each transaction stamps the rows it inserts with its own id (xmin).
        events, transactions = conn.execute(
            "SELECT count(*), count(DISTINCT xmin::text) FROM events WHERE workspace_id = %s",
            (ws,),
        ).fetchone()
    assert events == 50
    assert transactions < 50, "the calls that waited were not stored together"
