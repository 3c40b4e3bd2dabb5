"""A foreign id answers exactly as an id that does not exist."""

import base64
import uuid

from tests.conftest import gql

NODE = "query($id: ID!) { node(id: $id) { id __typename ... on Workspace { name } ... on ApiToken { name } } }"


def _gid(type_name: str, key: uuid.UUID) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def _first_token_id(client, token):
    body = gql(
        client, "{ workspace { apiTokens(first: 1) { edges { node { id } } } } }", token=token
    )
    return body["data"]["workspace"]["apiTokens"]["edges"][0]["node"]["id"]


def test_own_nodes_resolve(client, workspace):
    ws = gql(client, "{ workspace { id } }", token=workspace.api_token)["data"]["workspace"]["id"]
    body = gql(client, NODE, {"id": ws}, token=workspace.api_token)
    assert body["data"]["node"] == {"id": ws, "__typename": "Workspace", "name": "alpha"}
    token_id = _first_token_id(client, workspace.api_token)
    body = gql(client, NODE, {"id": token_id}, token=workspace.api_token)
    assert body["data"]["node"]["__typename"] == "ApiToken"


def test_foreign_ids_answer_as_missing_ones(client, workspace, other_workspace):
    foreign_ws = _gid("Workspace", other_workspace.workspace.id)
    missing_ws = _gid("Workspace", uuid.uuid4())
    foreign_token = _first_token_id(client, other_workspace.api_token)
    missing_token = _gid("ApiToken", uuid.uuid4())
    answers = [
        gql(client, NODE, {"id": gid}, token=workspace.api_token)
        for gid in (foreign_ws, missing_ws, foreign_token, missing_token)
    ]
    assert answers == [{"data": {"node": None}}] * 4


def test_foreign_token_cannot_be_revoked(client, workspace, other_workspace):
    foreign_token = _first_token_id(client, other_workspace.api_token)
    missing_token = _gid("ApiToken", uuid.uuid4())
    revoke = "mutation($id: ID!) { revokeApiToken(id: $id) { apiToken { id } errors { code field message } } }"
    foreign = gql(client, revoke, {"id": foreign_token}, token=workspace.api_token)
    missing = gql(client, revoke, {"id": missing_token}, token=workspace.api_token)
    assert foreign == missing
    assert foreign["data"]["revokeApiToken"]["errors"][0]["code"] == "NOT_FOUND"
    still = gql(client, "{ workspace { name } }", token=other_workspace.api_token)
    assert still["data"]["workspace"]["name"] == "beta"
