"""Authentication and authorization: bad credentials get an error and no data."""

import base64
from datetime import UTC, datetime, timedelta

import pytest

from api import auth
from domain import credentials
from tests.conftest import gql

WORKSPACE_QUERY = "{ workspace { id name } }"
ADMIN_QUERY = "{ workspace { apiTokens(first: 5) { edges { node { id name } } } } }"
CREATE_TOKEN = """
mutation($input: CreateApiTokenInput!) {
  createApiToken(input: $input) { token apiToken { id scopes } errors { field code message } }
}"""
REVOKE_TOKEN = (
    "mutation($id: ID!) { revokeApiToken(id: $id) { apiToken { revokedAt } errors { code } } }"
)


def _create_token(client, admin_token, scopes, expires_at=None):
    variables = {"input": {"name": "t", "scopes": scopes, "expiresAt": expires_at}}
    body = gql(client, CREATE_TOKEN, variables, token=admin_token)
    assert body.get("errors") is None, body
    payload = body["data"]["createApiToken"]
    assert payload["errors"] == []
    return payload


def _assert_denied(body, code):
    assert body["data"] is None, body
    assert body["errors"][0]["extensions"]["code"] == code, body


def test_missing_token(client):
    _assert_denied(gql(client, WORKSPACE_QUERY), "UNAUTHENTICATED")


@pytest.mark.parametrize(
    "token",
    [
        "nonsense",
        "cdp_at_" + "0" * 32 + "_guess",
        "a.b.c",
    ],
)
def test_wrong_token(client, token):
    _assert_denied(gql(client, WORKSPACE_QUERY, token=token), "UNAUTHENTICATED")


def test_token_of_one_workspace_with_another_workspace_prefix(client, workspace, other_workspace):
    secret = workspace.api_token.rsplit("_", 1)[1]
    forged = f"cdp_at_{other_workspace.workspace.id.hex}_{secret}"
    _assert_denied(gql(client, WORKSPACE_QUERY, token=forged), "UNAUTHENTICATED")


def test_expired_token(client, workspace, monkeypatch):
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    payload = _create_token(client, workspace.api_token, ["profiles:read"], soon)
    assert gql(client, WORKSPACE_QUERY, token=payload["token"]).get("errors") is None
    later = datetime.now(UTC) + timedelta(seconds=5)
    monkeypatch.setattr(client.app.state.cdp.clock, "now", lambda: later)
    body = gql(client, WORKSPACE_QUERY, token=payload["token"])
    _assert_denied(body, "UNAUTHENTICATED")
    assert "expired" in body["errors"][0]["message"]


def test_expiry_in_the_past_is_an_input_error(client, workspace):
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    variables = {"input": {"name": "t", "scopes": ["admin"], "expiresAt": past}}
    payload = gql(client, CREATE_TOKEN, variables, token=workspace.api_token)["data"][
        "createApiToken"
    ]
    assert payload["token"] is None
    assert payload["errors"] == [
        {"field": "expiresAt", "code": "INVALID", "message": "expiry must be in the future"}
    ]


def test_unknown_scope_is_an_input_error(client, workspace):
    variables = {"input": {"name": "t", "scopes": ["root"]}}
    payload = gql(client, CREATE_TOKEN, variables, token=workspace.api_token)["data"][
        "createApiToken"
    ]
    assert payload["errors"][0]["code"] == "INVALID"
    assert payload["errors"][0]["field"] == "scopes"


def test_revoked_token(client, workspace):
    payload = _create_token(client, workspace.api_token, ["profiles:read"])
    assert gql(client, WORKSPACE_QUERY, token=payload["token"]).get("errors") is None
    revoked = gql(
        client, REVOKE_TOKEN, {"id": payload["apiToken"]["id"]}, token=workspace.api_token
    )
    assert revoked["data"]["revokeApiToken"]["apiToken"]["revokedAt"] is not None
    body = gql(client, WORKSPACE_QUERY, token=payload["token"])
    _assert_denied(body, "UNAUTHENTICATED")
    assert "revoked" in body["errors"][0]["message"]


def test_token_lacking_scope(client, workspace):
    payload = _create_token(client, workspace.api_token, ["profiles:read"])
    body = gql(client, ADMIN_QUERY, token=payload["token"])
    _assert_denied(body, "FORBIDDEN")
    mutation = gql(
        client, CREATE_TOKEN, {"input": {"name": "x", "scopes": ["admin"]}}, token=payload["token"]
    )
    _assert_denied(mutation, "FORBIDDEN")


def test_token_is_stored_hashed(client, workspace, database_url):
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT token_hash FROM api_tokens").fetchall()
    assert rows
    assert all(workspace.api_token.encode() not in bytes(r[0]) for r in rows)
    assert credentials.digest(workspace.api_token) in [bytes(r[0]) for r in rows]


CREATE_CLIENT = """
mutation($input: CreateOAuthClientInput!) {
  createOAuthClient(input: $input) { client { id clientId scopes } clientSecret errors { code } }
}"""


def _client_credentials(client, admin_token, scopes):
    body = gql(
        client, CREATE_CLIENT, {"input": {"name": "crm", "scopes": scopes}}, token=admin_token
    )
    payload = body["data"]["createOAuthClient"]
    return payload["client"], payload["clientSecret"]


def _basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_client_credentials_issue_a_scoped_short_lived_jwt(client, workspace):
    oauth_client, secret = _client_credentials(
        client, workspace.api_token, ["profiles:read", "profiles:write"]
    )
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "profiles:read"},
        headers={"Authorization": _basic(oauth_client["clientId"], secret)},
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    issued = response.json()
    assert issued["token_type"] == "Bearer"
    assert issued["scope"] == "profiles:read"
    assert 0 < issued["expires_in"] <= 3600
    body = gql(client, WORKSPACE_QUERY, token=issued["access_token"])
    assert body["data"]["workspace"]["name"] == "alpha"
    _assert_denied(gql(client, ADMIN_QUERY, token=issued["access_token"]), "FORBIDDEN")


def test_client_credentials_errors(client, workspace):
    oauth_client, secret = _client_credentials(client, workspace.api_token, ["profiles:read"])
    wrong = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": oauth_client["clientId"],
            "client_secret": "x",
        },
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    grant = client.post("/oauth/token", data={"grant_type": "password"})
    assert grant.status_code == 400
    assert grant.json()["error"] == "unsupported_grant_type"
    scope = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "admin"},
        headers={"Authorization": _basic(oauth_client["clientId"], secret)},
    )
    assert scope.status_code == 400
    assert scope.json()["error"] == "invalid_scope"


def test_expired_and_revoked_jwts_are_refused(client, workspace):
    oauth_client, secret = _client_credentials(client, workspace.api_token, ["profiles:read"])
    issued = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": _basic(oauth_client["clientId"], secret)},
    ).json()
    state = client.app.state.cdp
    stale = auth.issue_client_jwt(
        credentials.OAuthClient(
            id=__import__("uuid").UUID(
                __import__("base64").b64decode(oauth_client["id"]).decode().split(":")[1]
            ),
            client_id=oauth_client["clientId"],
            name="crm",
            scopes=frozenset({"profiles:read"}),
            created_at=datetime.now(UTC),
            revoked_at=None,
        ),
        workspace_id=workspace.workspace.id,
        scopes=frozenset({"profiles:read"}),
        secret=state.secret,
        ttl_seconds=60,
        now=datetime.now(UTC).timestamp() - 3600,
    )
    body = gql(client, WORKSPACE_QUERY, token=stale.access_token)
    _assert_denied(body, "UNAUTHENTICATED")
    assert "expired" in body["errors"][0]["message"]
    tampered = issued["access_token"][:-2] + (
        "AA" if not issued["access_token"].endswith("AA") else "BB"
    )
    _assert_denied(gql(client, WORKSPACE_QUERY, token=tampered), "UNAUTHENTICATED")
    revoke = (
        "mutation($id: ID!) { revokeOAuthClient(id: $id) { client { revokedAt } errors { code } } }"
    )
    gql(client, revoke, {"id": oauth_client["id"]}, token=workspace.api_token)
    body = gql(client, WORKSPACE_QUERY, token=issued["access_token"])
    _assert_denied(body, "UNAUTHENTICATED")


LOOKUP = (
    'query($v: String!) { profile(identifier: {kind: "email", value: $v}) '
    "{ id events(first: 2) { edges { node { name } } } } }"
)


def _lookup(client, token, value="nobody@example.com"):
    return gql(client, LOOKUP, {"v": value}, token=token)


def _lookup_denied(body, code):
    assert body["data"] == {"profile": None}, body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body


def test_a_lookup_checks_its_token_in_its_first_round_trip(client, workspace, monkeypatch):
    # The profile lookup sends the token check with its query: every way a token
    # can be bad still gets the error, and no data.
    secret = workspace.api_token.rsplit("_", 1)[1]
    unknown = f"cdp_at_{workspace.workspace.id.hex}_{secret}x"
    _lookup_denied(_lookup(client, unknown), "UNAUTHENTICATED")
    _lookup_denied(_lookup(client, unknown, value="not an email"), "UNAUTHENTICATED")
    narrow = _create_token(client, workspace.api_token, ["consent:read"])["token"]
    body = _lookup(client, narrow)
    _lookup_denied(body, "FORBIDDEN")
    assert "profiles:read" in body["errors"][0]["message"]
    revocable = _create_token(client, workspace.api_token, ["profiles:read"])
    assert _lookup(client, revocable["token"]) == {"data": {"profile": None}}
    gql(client, REVOKE_TOKEN, {"id": revocable["apiToken"]["id"]}, token=workspace.api_token)
    body = _lookup(client, revocable["token"])
    _lookup_denied(body, "UNAUTHENTICATED")
    assert "revoked" in body["errors"][0]["message"]
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    expiring = _create_token(client, workspace.api_token, ["profiles:read"], soon)["token"]
    later = datetime.now(UTC) + timedelta(seconds=5)
    monkeypatch.setattr(client.app.state.cdp.clock, "now", lambda: later)
    body = _lookup(client, expiring)
    _lookup_denied(body, "UNAUTHENTICATED")
    assert "expired" in body["errors"][0]["message"]


def test_a_lookup_with_a_good_token_answers_and_checks_the_token_once(
    client, workspace, sql_counter
):
    email = "once@example.com"
    response = client.post(
        "/v1/identify",
        json={"userId": "once-1", "traits": {"email": email}},
        auth=(workspace.write_key, ""),
    )
    assert response.status_code == 200
    sql_counter.statements.clear()
    body = _lookup(client, workspace.api_token, email)
    assert body.get("errors") is None, body
    assert body["data"]["profile"]["events"]["edges"] == [{"node": {"name": None}}]
    checks = [s for s in sql_counter.statements if "cdp_api_token" in s]
    assert len(checks) == 1, sql_counter.statements
