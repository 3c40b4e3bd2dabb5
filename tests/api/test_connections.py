"""Connections page with cursors; nodes load in batches, not one query each."""

from tests.conftest import gql

CREATE = "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { apiToken { id } errors { code } } }"
PAGE = """query($after: String) { workspace { apiTokens(first: 2, after: $after) {
  edges { cursor node { id name } } pageInfo { hasNextPage hasPreviousPage endCursor } } } }"""


def _make_tokens(client, admin_token, count):
    ids = []
    for i in range(count):
        body = gql(
            client, CREATE, {"i": {"name": f"t{i}", "scopes": ["profiles:read"]}}, token=admin_token
        )
        ids.append(body["data"]["createApiToken"]["apiToken"]["id"])
    return ids


def test_pages_cover_every_token_once(client, workspace):
    _make_tokens(client, workspace.api_token, 4)
    names, after, pages = [], None, 0
    while True:
        conn = gql(client, PAGE, {"after": after}, token=workspace.api_token)["data"]["workspace"][
            "apiTokens"
        ]
        pages += 1
        names += [e["node"]["name"] for e in conn["edges"]]
        assert conn["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert pages == 3
    assert sorted(names) == sorted(["initial admin token", "t0", "t1", "t2", "t3"])


def test_malformed_cursor_is_a_clear_error(client, workspace):
    body = gql(client, PAGE, {"after": "not-a-cursor"}, token=workspace.api_token)
    assert body["errors"][0]["extensions"]["code"] == "INVALID"
    assert body["errors"][0]["message"] == "malformed cursor"


def _nodes_query(ids):
    fields = " ".join(
        f'n{i}: node(id: "{gid}") {{ id ... on ApiToken {{ name }} }}' for i, gid in enumerate(ids)
    )
    return "{ " + fields + " }"


def test_many_nodes_cost_the_same_statements_as_few(client, workspace, sql_counter):
    ids = _make_tokens(client, workspace.api_token, 12)
    sql_counter.statements.clear()
    few = gql(client, _nodes_query(ids[:2]), token=workspace.api_token)
    few_count = sql_counter.count
    sql_counter.statements.clear()
    many = gql(client, _nodes_query(ids), token=workspace.api_token)
    assert few.get("errors") is None
    assert many.get("errors") is None
    assert all(many["data"][f"n{i}"]["name"] == f"t{i}" for i in range(12))
    assert sql_counter.count == few_count
    assert few_count <= 4


def test_oauth_client_is_a_node_and_listed(client, workspace):
    create = """mutation { createOAuthClient(input: {name: "crm", scopes: ["profiles:write"]}) {
      client { id clientId } clientSecret errors { code } } }"""
    made = gql(client, create, token=workspace.api_token)["data"]["createOAuthClient"]
    node = gql(
        client,
        "query($id: ID!) { node(id: $id) { ... on OAuthClient { clientId scopes } } }",
        {"id": made["client"]["id"]},
        token=workspace.api_token,
    )["data"]["node"]
    assert node == {"clientId": made["client"]["clientId"], "scopes": ["profiles:write"]}
    listed = gql(
        client,
        "{ workspace { oauthClients(first: 10) { edges { node { clientId } } } } }",
        token=workspace.api_token,
    )["data"]["workspace"]["oauthClients"]["edges"]
    assert [e["node"]["clientId"] for e in listed] == [made["client"]["clientId"]]
    assert made["clientSecret"] not in str(listed)
