"""Helpers for the consent tests: GraphQL calls, Segment calls, raw SQL as the runtime role."""

import base64
import uuid
from typing import Any

import psycopg
from starlette.testclient import TestClient

from tests.conftest import gql
from tests.support.database import APP_ROLE

CONSENT_FIELDS = "purpose channel status lawfulBasis source noticeVersion recordedAt"


def ok(body: dict[str, Any], name: str) -> dict[str, Any]:
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"][name]
    assert payload.get("errors", []) == [], payload
    return payload


def record_consent(
    client: TestClient, token: str, email: str, status: str, **extra: Any
) -> dict[str, Any]:
    variables = {
        "input": {
            "identifier": {"kind": "email", "value": email},
            "purpose": "newsletter",
            "channel": "email",
            "status": status,
            "lawfulBasis": "consent",
            "source": "signup-form",
            **extra,
        }
    }
    return gql(
        client,
        "mutation($input: ConsentInput!) { recordConsent(input: $input) { "
        f"consent {{ {CONSENT_FIELDS} }} profile {{ id }} confirmationUrl "
        "errors { field code message } } }",
        variables,
        token,
    )


def profile_by_email(client: TestClient, token: str, email: str, fields: str) -> dict[str, Any]:
    body = gql(
        client,
        f'query($v: String!) {{ profile(identifier: {{kind: "email", value: $v}}) {{ {fields} }} }}',
        {"v": email},
        token,
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["profile"]
    return result


def track_batch(client: TestClient, write_key: str, batch: list[dict[str, Any]]) -> None:
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    for message in batch:
        message.setdefault("messageId", uuid.uuid4().hex)
    response = client.post(
        "/v1/batch", json={"batch": batch}, headers={"Authorization": f"Basic {auth}"}
    )
    assert response.status_code == 200, response.text


def as_runtime_role(database_url: str, workspace_id: Any, statement: str) -> None:
    """Run one statement as the runtime role in the workspace; raises what PostgreSQL raises."""
    with psycopg.connect(database_url, autocommit=False) as conn:
        conn.execute(f"SET ROLE {APP_ROLE}")
        conn.execute("SELECT set_config('cdp.workspace_id', %s, true)", (str(workspace_id),))
        conn.execute(statement)
        conn.rollback()
