"""OAuth clients and a workspace's event retention are audited by the services that change them."""

import uuid

import psycopg
from strawberry import relay

from tests.conftest import gql
from tests.consent.support import ok


def _entries(database_url: str, workspace_id: uuid.UUID) -> list[tuple[str, str, str, str, dict]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT action, object_type, object_id, actor_kind, details FROM audit_log "
            "WHERE workspace_id = %s AND action NOT LIKE 'api_token.%%' ORDER BY id",
            (workspace_id,),
        ).fetchall()


def test_oauth_clients_and_event_retention_are_audited(client, workspace, database_url):
    token = workspace.api_token
    created = ok(
        gql(
            client,
            'mutation { createOAuthClient(input: {name: "crm", scopes: ["profiles:write", '
            '"consent:read"]}) { client { id } errors { message } } }',
            token=token,
        ),
        "createOAuthClient",
    )
    client_id = relay.GlobalID.from_id(created["client"]["id"]).node_id
    ok(
        gql(
            client,
            "mutation($id: ID!) { revokeOAuthClient(id: $id) { errors { message } } }",
            {"id": created["client"]["id"]},
            token,
        ),
        "revokeOAuthClient",
    )
    ok(gql(client, "mutation { setEventRetention(days: 30) { errors { field } } }", token=token),
       "setEventRetention")  # fmt: skip
    ok(gql(client, "mutation { setEventRetention { errors { field } } }", token=token),
       "setEventRetention")  # fmt: skip
    # Refused changes write nothing.
    refused = gql(
        client, "mutation { setEventRetention(days: 0) { errors { field } } }", token=token
    )
    assert refused["data"]["setEventRetention"]["errors"] == [{"field": "days"}]
    missing = relay.GlobalID("OAuthClient", str(uuid.uuid4()))
    gone = gql(
        client,
        "mutation($id: ID!) { revokeOAuthClient(id: $id) { errors { code } } }",
        {"id": str(missing)},
        token,
    )
    assert gone["data"]["revokeOAuthClient"]["errors"] == [{"code": "NOT_FOUND"}]

    workspace_id = str(workspace.workspace.id)
    assert _entries(database_url, workspace.workspace.id) == [
        ("oauth_client.created", "oauth_client", client_id, "api_token",
         {"scopes": ["consent:read", "profiles:write"]}),
        ("oauth_client.revoked", "oauth_client", client_id, "api_token", {}),
        ("workspace.event_retention_set", "workspace", workspace_id, "api_token", {"days": 30}),
        ("workspace.event_retention_set", "workspace", workspace_id, "api_token", {"days": None}),
    ]  # fmt: skip
