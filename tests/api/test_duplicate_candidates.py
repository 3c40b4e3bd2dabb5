"""duplicateCandidates over GraphQL: found, explained, and never a pair that must not merge."""

import base64
import uuid

from tests.conftest import gql
from tests.support.factories import identity_conflict, seeding

UPSERT = """
mutation($input: [ProfileUpsertInput!]!) {
  upsertProfiles(input: $input) { profiles { id } errors { index field message } }
}"""
CANDIDATES = """
query($first: Int, $minScore: Float! = 0.8) {
  duplicateCandidates(first: $first, minScore: $minScore) {
    profileA { id traits } profileB { id traits } score reasons
  }
}"""
MERGE = """mutation($t: ID!, $s: ID!) {
  mergeProfiles(targetId: $t, sourceId: $s) { profile { id } errors { code message } }
}"""


def make(client, token, *items):
    body = gql(client, UPSERT, {"input": list(items)}, token=token)
    assert body.get("errors") is None, body
    assert body["data"]["upsertProfiles"]["errors"] == []
    return [p["id"] for p in body["data"]["upsertProfiles"]["profiles"]]


def person(email, traits, *more_identifiers):
    return {
        "identifiers": [{"kind": "email", "value": email}, *more_identifiers],
        "traits": traits,
    }


def local(global_id):
    kind, _, key = base64.b64decode(global_id).decode().partition(":")
    assert kind == "Profile"
    return uuid.UUID(key)


def candidates(client, token, **variables):
    body = gql(client, CANDIDATES, variables, token=token)
    assert body.get("errors") is None, body
    return body["data"]["duplicateCandidates"]


def pairs(found):
    return [{c["profileA"]["id"], c["profileB"]["id"]} for c in found]


def test_near_duplicates_are_found_with_reasons(client, workspace):
    token = workspace.api_token
    jon, john = make(
        client,
        token,
        person("jon@example.com", {"name": "Jon Smith", "phone": "+44 20 7946 0958"}),
        person(
            "john.smith@example.org",
            {"first_name": "John", "last_name": "Smith", "phone": "+442079460958"},
        ),
    )
    found = candidates(client, token)
    assert pairs(found) == [{jon, john}]
    assert found[0]["reasons"] == ["name 95", "phone equal"]
    assert 0.8 <= found[0]["score"] <= 1
    by_id = {
        found[0]["profileA"]["id"]: found[0]["profileA"],
        found[0]["profileB"]["id"]: found[0]["profileB"],
    }
    assert by_id[jon]["traits"]["name"] == "Jon Smith"


def test_same_common_name_and_nothing_else_is_not_a_pair(client, workspace):
    token = workspace.api_token
    make(
        client,
        token,
        person("a.smith@example.com", {"name": "John Smith", "phone": "+4791234567"}),
        person("b.smith@example.org", {"name": "John Smith", "phone": "+4798765432"}),
        person("c.smith@example.net", {"name": "John Smith"}),
    )
    assert candidates(client, token, minScore=0.0) == []


def test_two_user_ids_are_never_proposed(client, workspace):
    token = workspace.api_token
    traits = {"name": "Ada Lovelace", "phone": "+4755512345", "address": "12 Ockham Lane"}
    ada1, ada2 = make(
        client,
        token,
        person("ada1@example.com", traits, {"kind": "user_id", "value": "u-1"}),
        person("ada2@example.com", traits, {"kind": "user_id", "value": "u-2"}),
    )
    plain = make(client, token, person("ada3@example.com", traits))[0]
    found = pairs(candidates(client, token, minScore=0.0))
    assert {ada1, ada2} not in found
    # The pairs that the rules allow are still proposed.
    assert {ada1, plain} in found
    assert {ada2, plain} in found


def test_merged_away_profiles_never_appear_and_accepting_removes_the_pair(client, workspace):
    token = workspace.api_token
    a, b, c = make(
        client,
        token,
        person("kari@example.com", {"name": "Kari Nordmann", "phone": "+4791234567"}),
        person("kari.n@example.org", {"name": "Kari Nordman", "phone": "+47 912 34 567"}),
        person(
            "kn@example.net", {"firstName": "Kari", "lastName": "Nordmann", "phone": "+4791234567"}
        ),
    )
    assert sorted(map(sorted, pairs(candidates(client, token)))) == sorted(
        map(sorted, [{a, b}, {a, c}, {b, c}])
    )
    merged = gql(client, MERGE, {"t": a, "s": c}, token=token)["data"]["mergeProfiles"]
    assert merged["errors"] == []
    after_merge = candidates(client, token)
    assert pairs(after_merge) == [{a, b}]
    ids = {p["profileA"]["id"] for p in after_merge} | {p["profileB"]["id"] for p in after_merge}
    assert c not in ids
    accepted = gql(client, MERGE, {"t": a, "s": b}, token=token)["data"]["mergeProfiles"]
    assert accepted["errors"] == []
    assert candidates(client, token) == []


def test_recorded_identity_conflicts_are_not_proposed(client, workspace, database_url):
    token = workspace.api_token
    a, b = make(
        client,
        token,
        person("lin@example.com", {"name": "Lin Berg", "phone": "+4791112222"}),
        person("lin.berg@example.org", {"name": "Lin Berg", "phone": "+4791112222"}),
    )
    assert pairs(candidates(client, token)) == [{a, b}]
    with seeding(database_url) as conn:
        identity_conflict(
            conn,
            workspace.workspace.id,
            held_by=local(b),
            claimed_by=local(a),
            kind="crm_id",
            value="c-1",
        )
    assert candidates(client, token) == []


def test_other_workspaces_profiles_never_appear(client, workspace, other_workspace):
    traits = {"name": "Per Hansen", "phone": "+4790011223"}
    mine = make(client, workspace.api_token, person("per@example.com", traits))[0]
    theirs = make(client, other_workspace.api_token, person("per.h@example.com", traits))[0]
    assert candidates(client, workspace.api_token, minScore=0.0) == []
    assert candidates(client, other_workspace.api_token, minScore=0.0) == []
    again = make(client, workspace.api_token, person("p.hansen@example.org", traits))[0]
    found = candidates(client, workspace.api_token)
    assert pairs(found) == [{mine, again}]
    assert theirs not in pairs(found)[0]


def test_limits_and_bad_arguments(client, workspace):
    token = workspace.api_token
    too_many = gql(client, CANDIDATES, {"first": 101}, token=token)
    assert too_many["data"] is None
    assert too_many["errors"][0]["extensions"]["code"] == "INVALID"
    bad_score = gql(client, CANDIDATES, {"minScore": 1.5}, token=token)
    assert bad_score["errors"][0]["extensions"]["code"] == "INVALID"
    assert "minScore" in bad_score["errors"][0]["message"]
    assert candidates(client, token, first=0) == []


def test_needs_a_token_with_profiles_read(client, workspace):
    anonymous = gql(client, CANDIDATES)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    write_only = gql(
        client,
        'mutation { createApiToken(input: {name: "w", scopes: ["profiles:write"]}) { token } }',
        token=workspace.api_token,
    )["data"]["createApiToken"]["token"]
    forbidden = gql(client, CANDIDATES, token=write_only)
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
