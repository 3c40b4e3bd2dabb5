"""Segment `group` calls over HTTP, `Profile.groups` in GraphQL, merges and data-subject requests."""

import asyncio
import uuid
from uuid import UUID

import psycopg
from strawberry import relay

from consent.dsr import services as dsr
from consent.keys import Keys
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.conftest import gql
from tests.support.database import APP_ROLE, SECRET

GROUPS = "groups { groupId traits updatedAt }"
BY_USER = f"""query($v: String!) {{
  profile(identifier: {{kind: "user_id", value: $v}}) {{ id {GROUPS} }} }}"""
MERGE = f"""mutation($t: ID!, $s: ID!) {{ mergeProfiles(targetId: $t, sourceId: $s) {{
  profile {{ id {GROUPS} }} errors {{ code message }} }} }}"""


def _post(client, workspace, path: str, body: dict) -> None:
    body.setdefault("messageId", uuid.uuid4().hex)
    response = client.post(path, json=body, auth=(workspace.write_key, ""))
    assert response.status_code == 200, response.text


def _batch(client, workspace, messages: list[dict]) -> None:
    for m in messages:
        m.setdefault("messageId", uuid.uuid4().hex)
    response = client.post("/v1/batch", json={"batch": messages}, auth=(workspace.write_key, ""))
    assert response.status_code == 200, response.text


def _profile(client, workspace, user_id: str) -> dict:
    body = gql(client, BY_USER, {"v": user_id}, token=workspace.api_token)
    assert body.get("errors") is None, body
    profile: dict = body["data"]["profile"]
    return profile


def _owner_rows(database_url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()


def test_group_calls_by_route_and_in_a_batch_show_in_profile_groups(client, workspace):
    _post(
        client,
        workspace,
        "/v1/group",
        {
            "userId": "grp-api-1",
            "groupId": "acme",
            "traits": {"name": "Acme", "plan": "free"},
            "timestamp": "2026-05-01T09:00:00Z",
        },
    )
    _batch(
        client,
        workspace,
        [
            {
                "type": "group",
                "userId": "grp-api-1",
                "groupId": "acme",
                "traits": {"plan": "pro"},
                "timestamp": "2026-05-01T10:00:00Z",
            },
            {
                "type": "group",
                "userId": "grp-api-1",
                "groupId": 42,
                "traits": {"name": "Forty-two"},
                "timestamp": "2026-05-01T08:00:00Z",
            },
            # Older than what is stored: it adds `industry`, and leaves `plan` as it is.
            {
                "type": "group",
                "userId": "grp-api-1",
                "groupId": "acme",
                "traits": {"plan": "trial", "industry": "anvils"},
                "timestamp": "2026-04-30T09:00:00Z",
            },
        ],
    )
    assert _profile(client, workspace, "grp-api-1")["groups"] == [
        {"groupId": "42", "traits": {"name": "Forty-two"}, "updatedAt": "2026-05-01T08:00:00Z"},
        {
            "groupId": "acme",
            "traits": {"name": "Acme", "plan": "pro", "industry": "anvils"},
            "updatedAt": "2026-05-01T10:00:00Z",
        },
    ]


def test_a_profile_without_group_calls_has_no_groups(client, workspace):
    _post(client, workspace, "/v1/identify", {"userId": "grp-api-none", "traits": {"a": 1}})
    assert _profile(client, workspace, "grp-api-none")["groups"] == []


def test_merge_profiles_combines_shared_groups_and_moves_the_rest(client, workspace, database_url):
    _batch(
        client,
        workspace,
        [
            {"type": "group", "userId": "grp-t", "groupId": "shared",
             "traits": {"plan": "pro", "owner": "ann"}, "timestamp": "2026-05-01T10:00:00Z"},
            {"type": "group", "userId": "grp-t", "groupId": "target-only",
             "traits": {"t": 1}, "timestamp": "2026-05-01T10:00:00Z"},
            {"type": "group", "anonymousId": "grp-s", "groupId": "shared",
             "traits": {"plan": "free", "owner": "bob", "seats": 7},
             "timestamp": "2026-05-01T09:00:00Z"},
            {"type": "group", "anonymousId": "grp-s", "groupId": "shared",
             "traits": {"owner": "cid"}, "timestamp": "2026-05-01T11:00:00Z"},
            {"type": "group", "anonymousId": "grp-s", "groupId": "source-only",
             "traits": {"s": 2}, "timestamp": "2026-05-01T09:00:00Z"},
        ],
    )  # fmt: skip
    target = _profile(client, workspace, "grp-t")["id"]
    source = gql(
        client,
        'query { profile(identifier: {kind: "anonymous_id", value: "grp-s"}) { id } }',
        token=workspace.api_token,
    )["data"]["profile"]["id"]
    merged = gql(client, MERGE, {"t": target, "s": source}, token=workspace.api_token)
    payload = merged["data"]["mergeProfiles"]
    assert payload["errors"] == []
    assert payload["profile"]["groups"] == [
        {
            "groupId": "shared",
            "traits": {"plan": "pro", "owner": "cid", "seats": 7},
            "updatedAt": "2026-05-01T11:00:00Z",
        },
        {"groupId": "source-only", "traits": {"s": 2}, "updatedAt": "2026-05-01T09:00:00Z"},
        {"groupId": "target-only", "traits": {"t": 1}, "updatedAt": "2026-05-01T10:00:00Z"},
    ]
    rows = _owner_rows(
        database_url,
        "SELECT p.merged_into IS NULL, g.group_id FROM profile_groups g JOIN profiles p "
        "ON p.workspace_id = g.workspace_id AND p.id = g.profile_id "
        "WHERE g.workspace_id = %s AND g.group_id IN ('shared', 'source-only', 'target-only')",
        workspace.workspace.id,
    )
    assert sorted(rows) == [(True, "shared"), (True, "source-only"), (True, "target-only")]


PAGE = f"""query($first: Int!) {{ profiles(first: $first, identifierKind: "user_id") {{
  edges {{ node {{ id {GROUPS} }} }} }} }}"""


def test_a_page_of_profiles_reads_their_groups_in_one_statement(client, workspace, sql_counter):
    batch = []
    for i in range(30):
        batch += [
            {"type": "group", "userId": f"grp-page-{i}", "groupId": f"g-{i}", "traits": {"i": i}},
            {"type": "group", "userId": f"grp-page-{i}", "groupId": "common", "traits": {}},
        ]
    _batch(client, workspace, batch)
    counts = []
    for first in (3, 30):
        sql_counter.statements.clear()
        body = gql(client, PAGE, {"first": first}, token=workspace.api_token)
        assert body.get("errors") is None, body
        edges = body["data"]["profiles"]["edges"]
        assert len(edges) == first
        assert all(len(e["node"]["groups"]) == 2 for e in edges)
        counts.append(sql_counter.count)
        reads = [s for s in sql_counter.statements if "profile_groups" in s]
        assert len(reads) == 1, sql_counter.statements
    assert counts[0] == counts[1], sql_counter.statements


def _request(client, workspace, user_id: str, type_: str) -> str:
    body = gql(
        client,
        "mutation($input: DataSubjectRequestInput!) { createDataSubjectRequest(input: $input) "
        "{ dataSubjectRequest { id } errors { code message } } }",
        {"input": {"identifier": {"kind": "user_id", "value": user_id}, "type": type_}},
        workspace.api_token,
    )
    payload = body["data"]["createDataSubjectRequest"]
    assert payload["errors"] == [], payload
    request_id: str = payload["dataSubjectRequest"]["id"]
    return request_id


async def _carry_out(database_url: str, workspace_id: UUID, request_id: UUID) -> None:
    """What the worker's actor does, in this process."""
    engine = create_engine(database_url, role=APP_ROLE)
    sessions = session_factory(engine)
    try:
        async with UnitOfWork(sessions, workspace_id=workspace_id) as uow:
            assert await dsr.start(uow, request_id)
            await uow.commit()
        async with UnitOfWork(sessions, workspace_id=workspace_id) as uow:
            await dsr.carry_out(uow, Keys(SECRET), request_id)
            await uow.commit()
    finally:
        await engine.dispose()


def _process(client, workspace, database_url: str, user_id: str, type_: str) -> dict:
    node_id = _request(client, workspace, user_id, type_)
    request_id = UUID(relay.GlobalID.from_id(node_id).node_id)
    asyncio.run(_carry_out(database_url, workspace.workspace.id, request_id))
    body = gql(
        client,
        "query($id: ID!) { dataSubjectRequest(id: $id) { status export } }",
        {"id": node_id},
        workspace.api_token,
    )
    assert body.get("errors") is None, body
    answer: dict = body["data"]["dataSubjectRequest"]
    assert answer["status"] == "COMPLETED", answer
    return answer


def test_an_access_request_exports_the_groups(client, workspace, database_url):
    _batch(
        client,
        workspace,
        [
            {"type": "group", "userId": "grp-dsr-1", "groupId": "acme",
             "traits": {"name": "Acme"}, "timestamp": "2026-05-01T09:00:00Z"},
        ],
    )  # fmt: skip
    answer = _process(client, workspace, database_url, "grp-dsr-1", "ACCESS")
    exported = answer["export"]["stores"]["profile_groups"]
    assert [(g["group_id"], g["traits"]) for g in exported] == [("acme", {"name": "Acme"})]
    assert exported[0]["profile_id"] == answer["export"]["subject"]["profile_id"]


def test_an_erasure_deletes_the_groups(client, workspace, database_url):
    _batch(
        client,
        workspace,
        [
            {"type": "group", "userId": "grp-dsr-2", "groupId": "acme", "traits": {"n": 1}},
            {"type": "group", "userId": "grp-dsr-2", "groupId": "globex", "traits": {"n": 2}},
            {"type": "group", "userId": "grp-dsr-keep", "groupId": "acme", "traits": {"n": 3}},
        ],
    )
    erased = UUID(relay.GlobalID.from_id(_profile(client, workspace, "grp-dsr-2")["id"]).node_id)
    kept = UUID(relay.GlobalID.from_id(_profile(client, workspace, "grp-dsr-keep")["id"]).node_id)
    held = (
        "SELECT group_id FROM profile_groups WHERE workspace_id = %s AND profile_id = %s "
        "ORDER BY group_id"
    )
    ws = workspace.workspace.id
    assert _owner_rows(database_url, held, ws, erased) == [("acme",), ("globex",)]
    _process(client, workspace, database_url, "grp-dsr-2", "ERASURE")
    assert _owner_rows(database_url, held, ws, erased) == []
    assert _owner_rows(database_url, held, ws, kept) == [("acme",)]
