"""Segments through GraphQL: define, compute, read members and history, explain, preview, refuse."""

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from cdp.segments import services
from consent.keys import Keys
from domain.clock import FrozenClock
from tests.cdp.segments.support import in_uow, recompute_pending
from tests.conftest import gql
from tests.support import factories
from tests.support.database import SECRET

SEGMENT_FIELDS = "id name state size version definition"
PRO_IN_BERLIN = {
    "all": [
        {"trait": "plan", "op": "eq", "value": "pro"},
        {"trait": "address.city", "op": "in", "value": ["Berlin", "Paris"]},
    ]
}


def _profile_gid(profile_id: UUID) -> str:
    return base64.b64encode(f"Profile:{profile_id}".encode()).decode()


def _create(client, token: str, name: str, definition: Any) -> dict[str, Any]:
    body = gql(
        client,
        "mutation($input: SegmentInput!) { createSegment(input: $input) { "
        f"segment {{ {SEGMENT_FIELDS} }} errors {{ field code message }} }} }}",
        {"input": {"name": name, "definition": definition}},
        token=token,
    )
    payload: dict[str, Any] = body["data"]["createSegment"]
    return payload


def _segment(client, token: str, segment_id: str, fields: str = SEGMENT_FIELDS) -> dict[str, Any]:
    body = gql(
        client,
        f"query($id: ID!) {{ segment(id: $id) {{ {fields} }} }}",
        {"id": segment_id},
        token=token,
    )
    found: dict[str, Any] = body["data"]["segment"]
    return found


def _seed_people(database_url: str, ws: UUID) -> dict[str, UUID]:
    people = {
        "ada": {"plan": "pro", "address": {"city": "Berlin"}},
        "bo": {"plan": "pro", "address": {"city": "Rome"}},
        "cy": {"plan": "free", "address": {"city": "Paris"}},
        "di": {"plan": "pro", "address": {"city": "Paris"}},
    }
    with factories.seeding(database_url) as db:
        ids = {name: factories.profile(db, ws, traits=traits) for name, traits in people.items()}
        db.commit()
    return ids


def test_a_segment_is_computed_in_the_background_then_exact(client, workspace, database_url):
    ws, token = workspace.workspace.id, workspace.api_token
    people = _seed_people(database_url, ws)
    created = _create(client, token, "Pro in Berlin or Paris", PRO_IN_BERLIN)
    assert created["errors"] == []
    segment = created["segment"]
    assert (segment["state"], segment["size"], segment["version"]) == ("COMPUTING", 0, 1)
    assert segment["definition"] == PRO_IN_BERLIN

    changes = recompute_pending(database_url, ws)
    [change] = changes.values()
    assert change is not None
    assert (change.entered, change.exited) == (2, 0)
    found = _segment(
        client, token, segment["id"], "state size members(first: 10) { edges { node { id } } }"
    )
    assert (found["state"], found["size"]) == ("READY", 2)
    members = {e["node"]["id"] for e in found["members"]["edges"]}
    assert members == {_profile_gid(people["ada"]), _profile_gid(people["di"])}

    history = gql(
        client,
        "query($id: ID!) { node(id: $id) { ... on Profile { segments { name } "
        "segmentHistory(first: 5) { segment { name } entered at } } } }",
        {"id": _profile_gid(people["ada"])},
        token=token,
    )["data"]["node"]
    assert history["segments"] == [{"name": "Pro in Berlin or Paris"}]
    assert [(h["segment"]["name"], h["entered"]) for h in history["segmentHistory"]] == [
        ("Pro in Berlin or Paris", True)
    ]


def test_an_edit_recomputes_and_records_who_left(client, workspace, database_url):
    ws, token = workspace.workspace.id, workspace.api_token
    people = _seed_people(database_url, ws)
    segment = _create(client, token, "Pro", {"trait": "plan", "op": "eq", "value": "pro"})[
        "segment"
    ]
    recompute_pending(database_url, ws)
    assert _segment(client, token, segment["id"])["size"] == 3
    body = gql(
        client,
        "mutation($id: ID!, $input: SegmentInput!) { updateSegment(id: $id, input: $input) { "
        "segment { state version } errors { field message } } }",
        {"id": segment["id"], "input": {"name": "Pro", "definition": PRO_IN_BERLIN}},
        token=token,
    )
    assert body["data"]["updateSegment"] == {
        "segment": {"state": "COMPUTING", "version": 2},
        "errors": [],
    }
    [change] = recompute_pending(database_url, ws).values()
    assert change is not None
    assert (change.entered, change.exited) == (0, 1)
    history = gql(
        client,
        "query($id: ID!) { node(id: $id) { ... on Profile { segmentHistory { entered } } } }",
        {"id": _profile_gid(people["bo"])},
        token=token,
    )["data"]["node"]["segmentHistory"]
    assert [h["entered"] for h in history] == [False, True]


def test_a_bad_definition_names_each_bad_node_and_stores_nothing(client, workspace):
    token = workspace.api_token
    bad = {
        "all": [
            {"trait": "plan", "op": "equals", "value": "pro"},
            {"event": "Order Completed", "within": {"days": 0}},
            {"computed": "orderCount", "op": "gt", "value": "two"},
        ]
    }
    payload = _create(client, token, "Broken", bad)
    assert payload["segment"] is None
    fields = [e["field"] for e in payload["errors"]]
    assert fields == [
        "definition.all[0].op",
        "definition.all[1].within.days",
        "definition.all[2].value",
    ]
    assert all(e["code"] == "INVALID" for e in payload["errors"])
    assert "equals" in payload["errors"][0]["message"]
    listed = gql(client, "{ segments(first: 10) { edges { node { id } } } }", token=token)
    assert listed["data"]["segments"]["edges"] == []


def test_references_refuse_cycles_and_deletion_in_use(client, workspace, database_url):
    token = workspace.api_token
    base = _create(client, token, "Pro", {"trait": "plan", "op": "eq", "value": "pro"})["segment"]
    user = _create(
        client, token, "Pro buyers",
        {"all": [{"segment": base["id"]}, {"computed": "orderCount", "op": "gte", "value": 1}]},
    )["segment"]  # fmt: skip
    cycle = gql(
        client,
        "mutation($id: ID!, $input: SegmentInput!) { updateSegment(id: $id, input: $input) { "
        "segment { version } errors { field code message } } }",
        {"id": base["id"], "input": {"name": "Pro", "definition": {"segment": user["id"]}}},
        token=token,
    )["data"]["updateSegment"]
    assert cycle["segment"] is None
    assert cycle["errors"][0]["field"] == "definition.segment"
    assert "cycle" in cycle["errors"][0]["message"]
    missing = _create(client, token, "Ghost", {"segment": base["id"][:-4] + "AAAA"})
    assert missing["errors"][0]["field"] == "definition.segment"

    delete = "mutation($id: ID!) { deleteSegment(id: $id) { deletedId errors { code message } } }"
    refused = gql(client, delete, {"id": base["id"]}, token=token)["data"]["deleteSegment"]
    assert refused["deletedId"] is None
    assert refused["errors"][0]["code"] == "IN_USE"
    assert "Pro buyers" in refused["errors"][0]["message"]
    for segment_id in (user["id"], base["id"]):
        done = gql(client, delete, {"id": segment_id}, token=token)["data"]["deleteSegment"]
        assert done == {"deletedId": segment_id, "errors": []}
    assert _segment(client, token, base["id"], "id") is None


def test_a_name_is_unique_in_its_workspace(client, workspace):
    token = workspace.api_token
    definition = {"identifier": "email"}
    assert _create(client, token, "Reachable", definition)["errors"] == []
    again = _create(client, token, "Reachable", definition)
    assert [(e["field"], e["code"]) for e in again["errors"]] == [("name", "CONFLICT")]


def test_a_preview_counts_and_samples_without_writing(client, workspace, database_url):
    ws, token = workspace.workspace.id, workspace.api_token
    people = _seed_people(database_url, ws)
    body = gql(
        client,
        "query($d: JSON!) { previewSegment(definition: $d, sample: 1) { size sample { id } } }",
        {"d": PRO_IN_BERLIN},
        token=token,
    )
    preview = body["data"]["previewSegment"]
    assert preview["size"] == 2
    assert [s["id"] for s in preview["sample"]] == [_profile_gid(min(people["ada"], people["di"]))]
    listed = gql(client, "{ segments(first: 10) { edges { node { id } } } }", token=token)
    assert listed["data"]["segments"]["edges"] == []
    invalid = gql(
        client,
        "query($d: JSON!) { previewSegment(definition: $d) { size } }",
        {"d": {"trait": "plan"}},
        token=token,
    )
    assert invalid["data"] is None
    assert invalid["errors"][0]["extensions"] == {"code": "INVALID", "field": "definition.op"}
    assert "op" in invalid["errors"][0]["message"]


def test_explain_names_the_node_that_decided(client, workspace, database_url):
    ws, token = workspace.workspace.id, workspace.api_token
    people = _seed_people(database_url, ws)
    segment = _create(client, token, "Pro in Berlin or Paris", PRO_IN_BERLIN)["segment"]
    recompute_pending(database_url, ws)
    query = (
        "query($s: ID!, $p: ID!) { segment(id: $s) { explain(profileId: $p) "
        "{ member isMember tree } } }"
    )
    member = gql(client, query, {"s": segment["id"], "p": _profile_gid(people["ada"])}, token=token)
    explained = member["data"]["segment"]["explain"]
    assert (explained["member"], explained["isMember"]) == (True, True)
    assert explained["tree"]["matched"] is True
    assert explained["tree"]["all"][1]["actual"] == "Berlin"
    other = gql(client, query, {"s": segment["id"], "p": _profile_gid(people["bo"])}, token=token)
    tree = other["data"]["segment"]["explain"]["tree"]
    assert other["data"]["segment"]["explain"]["member"] is False
    assert tree["decidedBy"] == 1
    assert tree["all"][1] | {"matched": False, "actual": "Rome"} == tree["all"][1]


def test_explain_over_a_list_of_segments_reads_the_profile_once(
    client, workspace, database_url, sql_counter
):
    ws, token = workspace.workspace.id, workspace.api_token
    people = _seed_people(database_url, ws)
    _create(client, token, "Pro in Berlin or Paris", PRO_IN_BERLIN)
    _create(client, token, "Pro", {"trait": "plan", "op": "eq", "value": "pro"})
    recompute_pending(database_url, ws)
    query = (
        "query($p: ID!) { segments(first: 20) { edges { node { name "
        "explain(profileId: $p) { member } } } } }"
    )

    def explained() -> tuple[dict[str, bool], int]:
        sql_counter.statements.clear()
        body = gql(client, query, {"p": _profile_gid(people["bo"])}, token=token)
        edges = body["data"]["segments"]["edges"]
        # The outbox relay runs beside the request, for the jobs of the mutations before it.
        ours = [x for x in sql_counter.statements if "outbox" not in x]
        return {e["node"]["name"]: e["node"]["explain"]["member"] for e in edges}, len(ours)

    two, statements_for_two = explained()
    assert two == {"Pro in Berlin or Paris": False, "Pro": True}
    for n in range(4):
        _create(client, token, f"Pro {n}", {"trait": "plan", "op": "eq", "value": "pro"})
    six, statements_for_six = explained()
    assert len(six) == 6
    assert statements_for_six == statements_for_two


def test_the_definition_schema_is_published(client, workspace):
    body = gql(client, "{ segmentDefinitionSchema }", token=workspace.api_token)
    schema = body["data"]["segmentDefinitionSchema"]
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "node" in schema["$defs"]


def test_time_windows_follow_the_clock(database_url, workspace, client):
    """A window rule is evaluated at the clock's time: moving it past the window is an exit."""
    ws, token = workspace.workspace.id, workspace.api_token
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    with factories.seeding(database_url) as db:
        buyer = factories.profile(db, ws)
        factories.event(db, ws, buyer, name="Order Completed", timestamp=now - timedelta(days=29))
        db.commit()
    created = _create(
        client, token, "Recent buyers", {"event": "Order Completed", "within": {"days": 30}}
    )
    [entered] = recompute_pending(database_url, ws, clock=FrozenClock(now)).values()
    assert entered is not None
    assert (entered.entered, entered.exited) == (1, 0)
    segment_id = services.segment_id_of(created["segment"]["id"])
    assert segment_id is not None
    later = FrozenClock(now + timedelta(days=2))
    left = in_uow(
        database_url, ws, lambda uow: services.recompute(uow, Keys(SECRET), segment_id), clock=later
    )
    assert left is not None
    assert (left.entered, left.exited) == (0, 1)


def test_members_of_every_listed_segment_cost_one_statement(
    client, workspace, database_url, sql_counter
):
    ws, token = workspace.workspace.id, workspace.api_token
    _seed_people(database_url, ws)
    query = "{ segments(first: 10) { edges { node { name members(first: 5) { edges { node { id } } } } } } }"

    def count_for(segments: int) -> int:
        for n in range(segments):
            _create(client, token, f"Pro {n}", {"trait": "plan", "op": "eq", "value": "pro"})
        recompute_pending(database_url, ws)
        sql_counter.statements.clear()
        body = gql(client, query, token=token)
        assert all(
            len(e["node"]["members"]["edges"]) == 3 for e in body["data"]["segments"]["edges"]
        )
        return sql_counter.count

    assert count_for(1) == count_for(3)
