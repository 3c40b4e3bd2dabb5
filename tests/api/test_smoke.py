from tests.conftest import gql


def test_workspace_query_returns_callers_workspace(client, workspace):
    body = gql(client, "{ workspace { id name } }", token=workspace.api_token)
    assert body.get("errors") is None
    assert body["data"]["workspace"]["name"] == "alpha"
