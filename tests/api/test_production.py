"""ENV=production: no introspection, no GraphiQL, masked errors, no mutations over GET."""

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from domain import workspaces
from tests.conftest import SECRET, gql, make_settings


@pytest.fixture(scope="module")
def prod_client(database_url):
    settings = make_settings(database_url, env="production", secret_key=SECRET)
    assert settings.production
    with TestClient(create_app(settings, database_url=database_url)) as test_client:
        yield test_client


def test_introspection_is_off(prod_client, workspace):
    body = gql(prod_client, "{ __schema { types { name } } }", token=workspace.api_token)
    assert body.get("data") is None
    assert "introspection" in body["errors"][0]["message"].lower()


def test_introspection_is_on_in_development(client, workspace):
    body = gql(client, "{ __schema { queryType { name } } }", token=workspace.api_token)
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_graphiql_is_off(prod_client, client):
    prod = prod_client.get("/graphql", headers={"Accept": "text/html"})
    dev = client.get("/graphql", headers={"Accept": "text/html"})
    assert dev.status_code == 200
    assert "graphiql" in dev.text.lower()
    assert prod.status_code != 200 or "graphiql" not in prod.text.lower()


def test_unexpected_errors_are_masked(prod_client, client, workspace, monkeypatch):
    async def broken(uow):
        raise RuntimeError("connection to 10.0.0.7 failed: password hunter2")

    monkeypatch.setattr(workspaces, "current_workspace", broken)
    prod = gql(prod_client, "{ workspace { name } }", token=workspace.api_token)
    assert "hunter2" not in str(prod)
    assert prod["errors"][0]["message"] == "Unexpected error."
    dev = gql(client, "{ workspace { name } }", token=workspace.api_token)
    assert "hunter2" in dev["errors"][0]["message"]


def test_expected_errors_keep_their_message(prod_client):
    body = gql(prod_client, "{ workspace { name } }")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "authentication required" in body["errors"][0]["message"]


def test_no_field_suggestions(prod_client, client, workspace):
    prod = gql(prod_client, "{ workspac { name } }", token=workspace.api_token)
    dev = gql(client, "{ workspac { name } }", token=workspace.api_token)
    assert "Did you mean" in dev["errors"][0]["message"]
    assert "Did you mean" not in prod["errors"][0]["message"]


@pytest.mark.parametrize("which", ["prod", "dev"])
def test_get_cannot_run_a_mutation(prod_client, client, workspace, which):
    target = prod_client if which == "prod" else client
    mutation = 'mutation { createApiToken(input: {name: "via-get", scopes: ["admin"]}) { token } }'
    response = target.get(
        "/graphql",
        params={"query": mutation},
        headers={"Authorization": f"Bearer {workspace.api_token}"},
    )
    assert response.status_code in (400, 405)
    assert "token" not in response.text or "cdp_at_" not in response.text
    tokens = gql(
        target,
        "{ workspace { apiTokens(first: 100) { edges { node { name } } } } }",
        token=workspace.api_token,
    )
    names = [e["node"]["name"] for e in tokens["data"]["workspace"]["apiTokens"]["edges"]]
    assert "via-get" not in names


def test_get_can_run_a_query(client, workspace):
    response = client.get(
        "/graphql",
        params={"query": "{ workspace { name } }"},
        headers={"Authorization": f"Bearer {workspace.api_token}"},
    )
    assert response.status_code == 200
    assert response.json()["data"]["workspace"]["name"] == "alpha"
