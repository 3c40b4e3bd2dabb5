"""The consent ledger: append-only, the state at any moment, merges, notices, double opt-in."""

import uuid
from datetime import datetime

import psycopg
import pytest

from tests.conftest import gql
from tests.consent.support import (
    as_runtime_role,
    ok,
    profile_by_email,
    record_consent,
    track_batch,
)
from tests.support.factories import seeding, suppression


def _email() -> str:
    return f"ada.{uuid.uuid4().hex[:10]}@example.com"


def test_consent_at_shows_the_earlier_state_for_an_earlier_moment(client, workspace):
    email = _email()
    granted = ok(record_consent(client, workspace.api_token, email, "GRANTED"), "recordConsent")
    withdrawn = ok(
        record_consent(client, workspace.api_token, email, "WITHDRAWN", source="support-call"),
        "recordConsent",
    )
    first = datetime.fromisoformat(granted["consent"]["recordedAt"])
    second = datetime.fromisoformat(withdrawn["consent"]["recordedAt"])
    assert first < second
    between = first + (second - first) / 2
    body = gql(
        client,
        "query($v: String!, $between: DateTime!, $early: DateTime!) { profile(identifier: "
        '{kind: "email", value: $v}) { consents { status source } '
        'then: consentAt(purpose: "newsletter", channel: "email", at: $between) { status source } '
        'early: consentAt(purpose: "newsletter", channel: "email", at: $early) { status } } }',
        {"v": email, "between": between.isoformat(), "early": "2001-01-01T00:00:00+00:00"},
        workspace.api_token,
    )
    profile = body["data"]["profile"]
    assert profile["consents"] == [{"status": "WITHDRAWN", "source": "support-call"}]
    assert profile["then"] == {"status": "GRANTED", "source": "signup-form"}
    assert profile["early"] is None


@pytest.mark.parametrize("table", ["consent_records", "audit_log", "consent_notices"])
@pytest.mark.parametrize(
    "statement", ["UPDATE {t} SET workspace_id = workspace_id", "DELETE FROM {t}"]
)
def test_the_runtime_role_cannot_change_append_only_tables(
    client, workspace, database_url, table, statement
):
    ok(record_consent(client, workspace.api_token, _email(), "GRANTED"), "recordConsent")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_runtime_role(database_url, workspace.workspace.id, statement.format(t=table))


def test_erased_tombstones_cannot_be_deleted_by_the_runtime_role(database_url, workspace):
    with seeding(database_url) as conn:
        suppression(conn, workspace.workspace.id, digest=b"\x01" * 32, reason="erased")
    with psycopg.connect(database_url) as conn:
        conn.execute("SET ROLE cdp_app")
        conn.execute(
            "SELECT set_config('cdp.workspace_id', %s, false)", (str(workspace.workspace.id),)
        )
        deleted = conn.execute("DELETE FROM suppressions WHERE reason = 'erased'").rowcount
    assert deleted == 0


def test_bad_input_is_refused_with_the_field(client, workspace):
    cases = [
        ({"lawfulBasis": "because"}, "lawfulBasis"),
        ({"purpose": "News Letter!"}, "purpose"),
        ({"source": "  "}, "source"),
        ({"noticeVersion": "v9"}, "noticeVersion"),
        ({"ip": "hello"}, "ip"),
        ({"ip": "300.1.2.3"}, "ip"),
        ({"doubleOptIn": True, "status": "DENIED"}, "doubleOptIn"),
    ]
    for extra, field in cases:
        status = extra.pop("status", "GRANTED")
        body = record_consent(client, workspace.api_token, _email(), status, **extra)
        errors = body["data"]["recordConsent"]["errors"]
        assert [e["field"] for e in errors] == [field], (extra, errors)
    bad_email = record_consent(client, workspace.api_token, "not-an-email", "GRANTED")
    assert bad_email["data"]["recordConsent"]["errors"][0]["field"] == "identifier"


def test_a_notice_version_must_be_published_and_never_changes(client, workspace):
    publish = (
        'mutation($v: String!, $t: String!) { publishConsentNotice(purpose: "newsletter", '
        "version: $v, text: $t) { version errors { field message } } }"
    )
    assert (
        ok(
            gql(client, publish, {"v": "2026-11", "t": "Weekly news."}, workspace.api_token),
            "publishConsentNotice",
        )["version"]
        == "2026-11"
    )
    again = gql(client, publish, {"v": "2026-11", "t": "Other text."}, workspace.api_token)
    assert again["data"]["publishConsentNotice"]["errors"][0]["field"] == "version"
    recorded = ok(
        record_consent(client, workspace.api_token, _email(), "GRANTED", noticeVersion="2026-11"),
        "recordConsent",
    )
    assert recorded["consent"]["noticeVersion"] == "2026-11"


def test_consent_follows_a_merge_and_the_later_withdrawal_wins(client, workspace):
    email, anonymous = _email(), uuid.uuid4().hex
    token = workspace.api_token
    ok(record_consent(client, token, email, "GRANTED"), "recordConsent")
    # Another profile (a second device) withdraws later, then identifies with the email.
    track_batch(
        client,
        workspace.write_key,
        [{"type": "identify", "anonymousId": anonymous, "traits": {"phone": "+44 20 7946 0958"}}],
    )
    second_device = gql(
        client,
        'query($v: String!) { profile(identifier: {kind: "anonymous_id", value: $v}) { id } }',
        {"v": anonymous},
        token,
    )["data"]["profile"]
    assert second_device is not None
    assert second_device["id"] != profile_by_email(client, token, email, "id")["id"]
    withdraw = gql(
        client,
        "mutation($input: ConsentInput!) { recordConsent(input: $input) { errors { message } } }",
        {
            "input": {
                "identifier": {"kind": "anonymous_id", "value": anonymous},
                "purpose": "newsletter",
                "channel": "email",
                "status": "WITHDRAWN",
                "lawfulBasis": "consent",
                "source": "app-settings",
            }
        },
        token,
    )
    assert withdraw["data"]["recordConsent"]["errors"] == []
    track_batch(
        client,
        workspace.write_key,
        [{"type": "identify", "anonymousId": anonymous, "traits": {"email": email}}],
    )
    merged = profile_by_email(client, token, email, "id consents { status source }")
    survivor = gql(
        client,
        'query($v: String!) { profile(identifier: {kind: "anonymous_id", value: $v}) { id } }',
        {"v": anonymous},
        token,
    )["data"]["profile"]["id"]
    assert survivor == merged["id"], "the two profiles were not merged"
    assert merged["consents"] == [{"status": "WITHDRAWN", "source": "app-settings"}]


def test_double_opt_in_grants_only_through_the_signed_link(client, workspace):
    email = _email()
    token = workspace.api_token
    pending = ok(record_consent(client, token, email, "GRANTED", doubleOptIn=True), "recordConsent")
    url = pending["confirmationUrl"]
    assert pending["consent"] is None
    assert url
    assert profile_by_email(client, token, email, "consents { status }")["consents"] == []
    path = url.split("://", 1)[1].split("/", 1)[1]
    assert client.get(f"/{path}").status_code == 200
    assert profile_by_email(client, token, email, "consents { status }")["consents"] == []
    tampered = f"/{path[:-2]}{'A' if path[-2] != 'A' else 'B'}{path[-1]}"
    assert client.post(tampered).status_code == 400
    confirmed = client.post(f"/{path}")
    assert confirmed.status_code == 200
    consents = profile_by_email(client, token, email, "consents { status source }")["consents"]
    assert consents == [{"status": "GRANTED", "source": "signup-form (double opt-in confirmed)"}]
    assert client.post(f"/{path}").status_code == 200  # a second click changes nothing
    again = profile_by_email(client, token, email, "consents { status }")["consents"]
    assert again == [{"status": "GRANTED"}]
