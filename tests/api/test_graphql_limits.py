"""Hostile documents are rejected before any SQL runs."""

import pytest

from tests.conftest import gql


def _nested(depth: int) -> str:
    inner = "id"
    for _ in range(depth):
        inner = f"workspace {{ {inner} }}"
    return "{ " + inner + " }"


def _aliases(count: int) -> str:
    return "{ " + " ".join(f"a{i}: workspace {{ id }}" for i in range(count)) + " }"


def _tokens(count: int) -> str:
    return "{ workspace { " + " ".join("id" for _ in range(count)) + " } }"


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        (_nested(30), "exceeds maximum operation depth"),
        (_aliases(200), "aliases"),
        (_tokens(5000), "token"),
    ],
    ids=["depth-30", "aliases-200", "token-limit"],
)
def test_hostile_document_is_rejected_without_sql(client, sql_counter, workspace, document, needle):
    response = client.post(
        "/graphql",
        json={"query": document},
        headers={"Authorization": f"Bearer {workspace.api_token}"},
    )
    assert response.status_code in (200, 400)
    body = response.json()
    assert body.get("data") is None
    assert body["errors"], body
    assert needle.lower() in body["errors"][0]["message"].lower()
    assert sql_counter.count == 0, sql_counter.statements


def test_cost_limit_rejects_wide_pages_without_sql(client, sql_counter, workspace):
    wide = (
        "{ "
        + " ".join(
            f"w{i}: workspace {{ apiTokens(first: 100) {{ edges {{ node {{ id name scopes }} }} }} }}"
            for i in range(20)
        )
        + " }"
    )
    body = client.post(
        "/graphql", json={"query": wide}, headers={"Authorization": f"Bearer {workspace.api_token}"}
    ).json()
    assert body.get("data") is None
    assert "cost" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert sql_counter.count == 0


def test_reasonable_document_runs(client, sql_counter, workspace):
    body = gql(
        client,
        "{ workspace { apiTokens(first: 2) { edges { node { id name } } pageInfo { hasNextPage } } } }",
        token=workspace.api_token,
    )
    assert body.get("errors") is None
    assert sql_counter.count > 0


def test_page_size_is_capped_at_100(client, workspace):
    body = gql(
        client,
        "{ workspace { apiTokens(first: 101) { edges { node { id } } } } }",
        token=workspace.api_token,
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID"
    assert "between 0 and 100" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [(b'{"query": "{ workspace { id } }"', 400), (b'{"query": "{ __typename }", "x": NaN}', 200)],
    ids=["truncated", "nan-as-the-standard-library-reads-it"],
)
def test_request_bodies_are_read_as_json_is_written(client, workspace, body, status):
    response = client.post(
        "/graphql",
        content=body,
        headers={
            "Authorization": f"Bearer {workspace.api_token}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == status, response.text
