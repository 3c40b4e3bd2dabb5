"""Memberships follow changes: events, traits, consent and merges queue the profile in the change's
transaction, the upkeep job re-evaluates only the segments that read what changed, and the sweep
moves time-window segments as time passes."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from cdp.segments import services
from consent.keys import Keys
from tests.cdp.segments.support import in_uow, recompute_pending, run_upkeep, sweep
from tests.conftest import gql
from tests.consent.support import record_consent, track_batch
from tests.support.database import APP_ROLE, SECRET

SEGMENTS = "segments { name }"


def _create(client, token: str, name: str, definition: Any) -> uuid.UUID:
    body = gql(
        client,
        "mutation($input: SegmentInput!) { createSegment(input: $input) { segment { id } "
        "errors { field message } } }",
        {"input": {"name": name, "definition": definition}},
        token=token,
    )
    payload = body["data"]["createSegment"]
    assert payload["errors"] == [], payload
    found = services.segment_id_of(payload["segment"]["id"])
    assert found is not None
    return found


def _profile(client, token: str, user_id: str, fields: str) -> dict[str, Any] | None:
    body = gql(
        client,
        f'query($v: String!) {{ profile(identifier: {{kind: "user_id", value: $v}}) {{ {fields} }} }}',
        {"v": user_id},
        token=token,
    )
    found: dict[str, Any] | None = body["data"]["profile"]
    return found


def _names(client, token: str, user_id: str) -> set[str]:
    found = _profile(client, token, user_id, SEGMENTS)
    return set() if found is None else {s["name"] for s in found["segments"]}


def _pending(database_url: str, ws: uuid.UUID) -> dict[str, list[str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT i.value, ARRAY(SELECT jsonb_array_elements_text(c -> 'reasons')) "
            "FROM segment_pending p CROSS JOIN LATERAL jsonb_array_elements(p.changes) c "
            "JOIN identities i ON i.workspace_id = p.workspace_id "
            "AND i.profile_id = (c ->> 'pid')::uuid AND i.kind = 'user_id' "
            "WHERE p.workspace_id = %s",
            (ws,),
        ).fetchall()
    found: dict[str, set[str]] = {}
    for value, reasons in rows:
        found.setdefault(value, set()).update(reasons)
    return {value: sorted(reasons) for value, reasons in found.items()}


def _upkeep_jobs(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM outbox WHERE actor_name = 'segment_upkeep'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_an_event_queues_its_profile_and_the_upkeep_makes_it_a_member(
    client, workspace, database_url
):
    ws, token = workspace.workspace.id, workspace.api_token
    _create(client, token, "Buyers", {"event": "Order Completed"})
    _create(client, token, "Pro", {"trait": "plan", "op": "eq", "value": "pro"})
    _create(client, token, "Never ordered",
            {"event": "Order Completed", "count": {"op": "eq", "value": 0}})  # fmt: skip
    recompute_pending(database_url, ws)
    jobs_before = _upkeep_jobs(database_url)
    track_batch(client, workspace.write_key, [
        {"type": "track", "userId": "up-1", "event": "Order Completed"},
        {"type": "track", "userId": "up-2", "event": "Page Viewed"},
        {"type": "identify", "userId": "up-2", "traits": {"plan": "pro"}},
    ])  # fmt: skip
    # New profiles are queued as new: "never ordered" holds for an empty one.
    assert _pending(database_url, ws) == {
        "up-1": ["event:Order Completed", "identity", "new"],
        "up-2": ["event:", "event:Page Viewed", "identity", "new", "traits"],
    }
    # One job for the burst: a second change before the job runs queues no other.
    track_batch(
        client, workspace.write_key, [{"type": "track", "userId": "up-1", "event": "Page Viewed"}]
    )
    assert _upkeep_jobs(database_url) == jobs_before + 1
    assert _names(client, token, "up-1") == set()

    assert run_upkeep(database_url, ws) == 2
    assert _names(client, token, "up-1") == {"Buyers"}
    assert _names(client, token, "up-2") == {"Pro", "Never ordered"}
    assert _pending(database_url, ws) == {}
    history = _profile(client, token, "up-1", "segmentHistory { segment { name } entered }")
    assert history is not None
    assert history["segmentHistory"] == [{"segment": {"name": "Buyers"}, "entered": True}]


def test_a_workspace_without_segments_queues_nothing(client, other_workspace, database_url):
    track_batch(
        client, other_workspace.write_key,
        [{"type": "track", "userId": "none-1", "event": "Order Completed"}],
    )  # fmt: skip
    assert _pending(database_url, other_workspace.workspace.id) == {}


def test_a_consent_withdrawal_removes_the_profile_from_a_contactable_segment(
    client, workspace, database_url
):
    ws, token = workspace.workspace.id, workspace.api_token
    email = f"con-{uuid.uuid4().hex[:8]}@example.com"
    track_batch(client, workspace.write_key, [
        {"type": "identify", "userId": "con-1", "traits": {"email": email}},
    ])  # fmt: skip
    _create(
        client, token, "Newsletter readers",
        {"contactable": {"channel": "email", "purpose": "newsletter"}},
    )  # fmt: skip
    recompute_pending(database_url, ws)
    assert _names(client, token, "con-1") == set()
    record_consent(client, token, email, "GRANTED", purpose="newsletter")
    run_upkeep(database_url, ws)
    assert _names(client, token, "con-1") == {"Newsletter readers"}
    record_consent(client, token, email, "WITHDRAWN", purpose="newsletter")
    run_upkeep(database_url, ws)
    assert _names(client, token, "con-1") == set()


def test_a_merge_moves_membership_to_the_survivor(client, workspace, database_url):
    ws, token = workspace.workspace.id, workspace.api_token
    _create(client, token, "Viewers", {"event": "Page Viewed"})
    recompute_pending(database_url, ws)
    track_batch(client, workspace.write_key, [
        {"type": "page", "anonymousId": "anon-merge-1", "name": "Home", "event": "Page Viewed"},
        {"type": "track", "anonymousId": "anon-merge-1", "event": "Page Viewed"},
    ])  # fmt: skip
    run_upkeep(database_url, ws)
    segment = gql(client, "{ segments(first: 10) { edges { node { name size } } } }", token=token)[
        "data"
    ]["segments"]["edges"]
    assert {e["node"]["name"]: e["node"]["size"] for e in segment} == {"Viewers": 1}
    # The anonymous visitor signs in: the anonymous profile merges into the known one.
    track_batch(client, workspace.write_key, [
        {"type": "identify", "userId": "merge-1", "traits": {"name": "Mo"}},
        {"type": "identify", "userId": "merge-1", "anonymousId": "anon-merge-1"},
    ])  # fmt: skip
    run_upkeep(database_url, ws)
    assert _names(client, token, "merge-1") == {"Viewers"}
    sizes = gql(client, "{ segments(first: 10) { edges { node { name size } } } }", token=token)[
        "data"
    ]["segments"]["edges"]
    assert {e["node"]["name"]: e["node"]["size"] for e in sizes} == {"Viewers": 1}


def test_the_sweep_removes_a_member_whose_event_left_the_window(client, workspace, database_url):
    ws, token = workspace.workspace.id, workspace.api_token
    at = datetime.now(UTC) - timedelta(days=29, hours=23)
    track_batch(client, workspace.write_key, [
        {"type": "track", "userId": "sw-1", "event": "Order Completed", "timestamp": at.isoformat()},
    ])  # fmt: skip
    segment_id = _create(
        client, token, "Bought this month", {"event": "Order Completed", "within": {"days": 30}}
    )
    recompute_pending(database_url, ws)
    assert _names(client, token, "sw-1") == {"Bought this month"}
    sweep(database_url, ws, segment_id, datetime.now(UTC) + timedelta(hours=2))
    assert _names(client, token, "sw-1") == set()
    history = _profile(client, token, "sw-1", "segmentHistory { entered }")
    assert history is not None
    assert [h["entered"] for h in history["segmentHistory"]] == [False, True]


def test_an_upsert_queues_changed_traits_and_still_answers_each_profiles_creation(
    client, workspace, database_url
):
    ws, token = workspace.workspace.id, workspace.api_token
    _create(client, token, "Pro", {"trait": "plan", "op": "eq", "value": "pro"})
    recompute_pending(database_url, ws)
    upsert = (
        "mutation($input: [ProfileUpsertInput!]!) { upsertProfiles(input: $input) "
        "{ profiles { createdAt } errors { message } } }"
    )
    item = {"identifiers": [{"kind": "user_id", "value": "ups-1"}], "traits": {"plan": "free"}}
    first = gql(client, upsert, {"input": [item]}, token=token)["data"]["upsertProfiles"]
    run_upkeep(database_url, ws)
    item["traits"] = {"plan": "pro"}
    again = gql(client, upsert, {"input": [item]}, token=token)["data"]["upsertProfiles"]
    assert again["profiles"][0]["createdAt"] == first["profiles"][0]["createdAt"]
    assert _pending(database_url, ws) == {"ups-1": ["traits"]}
    run_upkeep(database_url, ws)
    assert _names(client, token, "ups-1") == {"Pro"}
    # The same traits again change nothing, and queue nothing.
    gql(client, upsert, {"input": [item]}, token=token)
    assert _pending(database_url, ws) == {}


def test_deleting_old_events_reevaluates_the_segments_that_count_them(
    client, workspace, database_url
):
    from dramatiq.brokers.stub import StubBroker

    from cdp import actors
    from domain import jobs

    ws, token = workspace.workspace.id, workspace.api_token
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    track_batch(client, workspace.write_key, [
        {"type": "track", "userId": "ret-1", "event": "Signed Up", "timestamp": old},
    ])  # fmt: skip
    ever = _create(client, token, "Ever signed up", {"event": "Signed Up"})
    _create(client, token, "Signed up this week", {"event": "Signed Up", "within": {"days": 7}})
    recompute_pending(database_url, ws)
    assert _names(client, token, "ret-1") == {"Ever signed up"}
    gql(client, "mutation { setEventRetention(days: 30) { days } }", token=token)

    runtime = jobs.configure(database_url=database_url, role=APP_ROLE, broker=StubBroker())

    async def retention_job() -> None:
        try:
            await actors.enforce_workspace_retention.fn.__wrapped__()
        finally:
            await runtime.close()

    try:
        asyncio.run(retention_job())
    finally:
        jobs._runtime = None
    # Only the all-time segment looks back past 30 days: it alone is queued again.
    with psycopg.connect(database_url) as conn:
        queued = conn.execute(
            "SELECT args FROM outbox WHERE actor_name = 'recompute_segment' "
            "AND args ->> 0 = %s AND created_at > now() - interval '1 minute' "
            "ORDER BY created_at",
            (str(ws),),
        ).fetchall()
    jobs_after_retention = [args for (args,) in queued][2:]
    assert [services.segment_id_of(a[1]) for a in jobs_after_retention] == [ever]
    left = in_uow(
        database_url, ws, lambda uow: services.recompute(uow, Keys(SECRET), ever, version=1)
    )
    assert left is not None
    assert (left.entered, left.exited) == (0, 1)
    assert _names(client, token, "ret-1") == set()


def _follow_changes(database_url: str, ws: uuid.UUID) -> int:
    """Run the workspace's membership-change jobs (as a worker would), in order; how many."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT args FROM outbox WHERE actor_name = 'segment_membership_changed' "
            "AND args ->> 0 = %s ORDER BY created_at, id",
            (str(ws),),
        ).fetchall()
    for (args,) in rows:
        change_id = uuid.UUID(args[1])
        in_uow(
            database_url, ws, lambda uow, c=change_id: services.follow_change(uow, Keys(SECRET), c)
        )
    return len(rows)


def test_a_segment_of_a_segment_follows_the_changes_of_the_one_it_names(
    client, workspace, database_url
):
    ws, token = workspace.workspace.id, workspace.api_token
    pro = _create(client, token, "Pro", {"trait": "plan", "op": "eq", "value": "pro"})
    _create(client, token, "Pro, known",
            {"all": [{"segment": services.global_id(pro)}, {"identifier": "user_id"}]})  # fmt: skip
    recompute_pending(database_url, ws)
    track_batch(client, workspace.write_key, [
        {"type": "identify", "userId": "dep-1", "traits": {"plan": "pro"}},
        {"type": "identify", "userId": "dep-2", "traits": {"plan": "free"}},
    ])  # fmt: skip
    run_upkeep(database_url, ws)
    # New profiles carry a new identifier, which the dependent reads itself:
    # it is evaluated after the segment it names, in the same transaction.
    assert _names(client, token, "dep-1") == {"Pro", "Pro, known"}
    assert _names(client, token, "dep-2") == set()
    track_batch(client, workspace.write_key, [
        {"type": "identify", "userId": "dep-1", "traits": {"plan": "free"}},
    ])  # fmt: skip
    run_upkeep(database_url, ws)
    # A trait change moves "Pro" only; the dependent follows the announced change.
    assert _names(client, token, "dep-1") == {"Pro, known"}
    assert _follow_changes(database_url, ws) == 2
    assert _names(client, token, "dep-1") == set()
