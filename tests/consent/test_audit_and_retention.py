"""Merges and token actions are audited; a workspace's own event retention is enforced."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from dramatiq.brokers.stub import StubBroker

from cdp import actors, retention
from consent import audit
from domain import jobs
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.conftest import gql
from tests.consent.support import ok, track_batch
from tests.support.database import APP_ROLE


def _audit(database_url: str, workspace_id) -> list[tuple[str, str, str, dict]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT action, actor_kind, actor_id, details FROM audit_log WHERE workspace_id = %s "
            "ORDER BY id",
            (workspace_id,),
        ).fetchall()


def test_merges_and_token_actions_are_audited(client, workspace, database_url):
    token = workspace.api_token
    anonymous, email = uuid.uuid4().hex, f"mo.{uuid.uuid4().hex[:8]}@example.com"
    track_batch(
        client,
        workspace.write_key,
        [{"type": "track", "anonymousId": anonymous, "event": "Viewed"}],
    )
    track_batch(
        client,
        workspace.write_key,
        [{"type": "identify", "userId": "u-audit", "traits": {"email": email}}],
    )
    track_batch(
        client,
        workspace.write_key,
        [{"type": "identify", "anonymousId": anonymous, "traits": {"email": email}}],
    )
    created = ok(
        gql(
            client,
            'mutation { createApiToken(input: {name: "reporting", scopes: ["profiles:read"]}) '
            "{ apiToken { id } errors { message } } }",
            token=token,
        ),
        "createApiToken",
    )
    revoked = gql(
        client,
        "mutation($id: ID!) { revokeApiToken(id: $id) { errors { message } } }",
        {"id": created["apiToken"]["id"]},
        token,
    )
    assert revoked["data"]["revokeApiToken"]["errors"] == []
    entries = _audit(database_url, workspace.workspace.id)
    merged = [e for e in entries if e[0] == "profile.merged"]
    assert merged, entries
    assert merged[0][1:3] == ("system", "identity-resolution")
    assert merged[0][3]["trigger"].startswith("message:")
    actions = [e[0] for e in entries]
    assert "api_token.created" in actions
    assert "api_token.revoked" in actions
    assert all(
        kind == "api_token" for action, kind, *_ in entries if action.startswith("api_token")
    )
    assert email not in str(entries)


async def _retention(database_url: str, workspace_id, days):
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=workspace_id) as uow:
            await retention.set_workspace_retention(uow, audit.Actor.system("test"), days)
            await uow.commit()
        async with UnitOfWork(session_factory(engine)) as uow:
            periods = await retention.retention_periods(uow)
        async with UnitOfWork(session_factory(engine), workspace_id=workspace_id) as uow:
            before = retention.expiry(datetime.now(UTC), days)
            deleted = await retention.delete_expired_events(uow, before=before)
            await uow.commit()
        return periods, deleted
    finally:
        await engine.dispose()


async def _run_actor(runtime: jobs.JobRuntime) -> None:
    try:
        # The actor body itself; dramatiq wraps it to run on its own event loop thread.
        await actors.enforce_workspace_retention.fn.__wrapped__()
    finally:
        await runtime.close()


def _run_retention_job(database_url: str) -> None:
    runtime = jobs.configure(database_url=database_url, role=APP_ROLE, broker=StubBroker())
    try:
        asyncio.run(_run_actor(runtime))
    finally:
        jobs._runtime = None


def test_a_workspace_retention_period_deletes_only_its_old_events(
    client, workspace, other_workspace, database_url
):
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    for ws in (workspace, other_workspace):
        track_batch(client, ws.write_key, [
            {"type": "track", "userId": "r1", "event": "Old", "timestamp": old},
            {"type": "track", "userId": "r1", "event": "New"},
        ])  # fmt: skip
    body = gql(
        client,
        "mutation { setEventRetention(days: 30) { days errors { field } } }",
        token=workspace.api_token,
    )
    assert body["data"]["setEventRetention"] == {"days": 30, "errors": []}
    bad = gql(
        client,
        "mutation { setEventRetention(days: 0) { errors { field } } }",
        token=workspace.api_token,
    )
    assert bad["data"]["setEventRetention"]["errors"] == [{"field": "days"}]
    periods, deleted = asyncio.run(_retention(database_url, workspace.workspace.id, 30))
    assert (workspace.workspace.id, 30) in periods
    assert other_workspace.workspace.id not in {w for w, _ in periods}
    assert deleted == 1
    # The periodic actor does the same for every workspace, and audits what it deleted.
    track_batch(
        client,
        workspace.write_key,
        [{"type": "track", "userId": "r2", "event": "Old", "timestamp": old}],
    )
    _run_retention_job(database_url)
    entries = [
        e
        for e in _audit(database_url, workspace.workspace.id)
        if e[0] == "retention.events_deleted"
    ]
    assert [(e[1], e[2], e[3]) for e in entries] == [
        ("system", "retention", {"days": 30, "events": 1})
    ]
    with psycopg.connect(database_url) as conn:
        left = dict(
            conn.execute(
                "SELECT workspace_id, count(*) FROM events WHERE workspace_id = ANY(%s) "
                "GROUP BY workspace_id",
                ([workspace.workspace.id, other_workspace.workspace.id],),
            ).fetchall()
        )
    assert left == {workspace.workspace.id: 1, other_workspace.workspace.id: 2}
    shown = gql(client, "{ workspace { eventRetentionDays } }", token=workspace.api_token)
    assert shown["data"]["workspace"]["eventRetentionDays"] == 30


def test_the_retention_job_deletes_in_bounded_batches_each_audited(
    client, workspace, database_url, monkeypatch
):
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    track_batch(client, workspace.write_key, [
        *({"type": "track", "userId": "b1", "event": f"Old{i}", "timestamp": old}
          for i in range(5)),
        {"type": "track", "userId": "b1", "event": "New"},
    ])  # fmt: skip
    gql(client, "mutation { setEventRetention(days: 30) { days } }", token=workspace.api_token)
    monkeypatch.setattr(retention, "DELETE_BATCH", 2)
    _run_retention_job(database_url)
    deleted = [
        e[3]["events"]
        for e in _audit(database_url, workspace.workspace.id)
        if e[0] == "retention.events_deleted"
    ]
    assert sorted(deleted) == [1, 2, 2]
    with psycopg.connect(database_url) as conn:
        names = conn.execute(
            "SELECT name FROM events WHERE workspace_id = %s", (workspace.workspace.id,)
        ).fetchall()
    assert names == [("New",)]
