"""Per-workspace merge rules, set over GraphQL, change how identities merge."""

from tests.conftest import gql

RULES = "{ workspace { mergeRules { kind maxValues priority isDefault } } }"
SET = """mutation($i: MergeRuleInput!) { setMergeRule(input: $i) {
  rule { kind maxValues priority isDefault } errors { field code message } } }"""
UPSERT = """mutation($input: [ProfileUpsertInput!]!) { upsertProfiles(input: $input) {
  profiles { id identities { kind value } } errors { code } } }"""


def test_defaults_are_listed(client, workspace):
    rules = gql(client, RULES, token=workspace.api_token)["data"]["workspace"]["mergeRules"]
    by_kind = {r["kind"]: r for r in rules}
    assert by_kind["user_id"] == {
        "kind": "user_id",
        "maxValues": 1,
        "priority": 0,
        "isDefault": True,
    }
    assert by_kind["email"]["maxValues"] is None
    assert rules[0]["kind"] == "user_id"


def test_a_rule_changes_later_merges(client, workspace):
    token = workspace.api_token
    made = gql(client, SET, {"i": {"kind": "Email", "maxValues": 1, "priority": 5}}, token=token)
    assert made["data"]["setMergeRule"] == {
        "rule": {"kind": "email", "maxValues": 1, "priority": 5, "isDefault": False},
        "errors": [],
    }
    items = [
        {
            "identifiers": [
                {"kind": "user_id", "value": "r-1"},
                {"kind": "email", "value": "a@example.com"},
            ]
        }
    ]
    gql(client, UPSERT, {"input": items}, token=token)
    second = [
        {
            "identifiers": [
                {"kind": "user_id", "value": "r-1"},
                {"kind": "email", "value": "b@example.com"},
            ]
        }
    ]
    profile = gql(client, UPSERT, {"input": second}, token=token)["data"]["upsertProfiles"][
        "profiles"
    ][0]
    emails = [i["value"] for i in profile["identities"] if i["kind"] == "email"]
    assert emails == ["a@example.com"]
    conflicts = gql(
        client,
        "{ identityConflicts(first: 10) { edges { node { kind value rule } } } }",
        token=token,
    )
    nodes = [e["node"] for e in conflicts["data"]["identityConflicts"]["edges"]]
    assert {"kind": "email", "value": "b@example.com", "rule": "email:max_values=1"} in nodes


def test_bad_rules_are_input_errors(client, workspace):
    for bad, field in (
        ({"kind": "email", "maxValues": 0, "priority": 1}, "maxValues"),
        ({"kind": "Bad Kind!", "priority": 1}, "kind"),
        ({"kind": "email", "priority": -1}, "priority"),
    ):
        payload = gql(client, SET, {"i": bad}, token=workspace.api_token)["data"]["setMergeRule"]
        assert payload["rule"] is None
        assert payload["errors"][0]["field"] == field


def test_setting_rules_needs_admin(client, workspace):
    token = gql(
        client,
        'mutation { createApiToken(input: {name: "w", scopes: ["profiles:write"]}) { token } }',
        token=workspace.api_token,
    )["data"]["createApiToken"]["token"]
    body = gql(client, SET, {"i": {"kind": "email", "priority": 1}}, token=token)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
