"""Data-subject requests end to end, processed by a real `cdp worker`."""

import ipaddress
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime
from typing import Any

import psycopg
import pytest

from consent.dsr.model import due_at
from tests.conftest import gql
from tests.consent.support import ok, profile_by_email, record_consent, track_batch
from tests.support.database import APP_ROLE, SECRET
from tests.support.worker import ROOT, running_worker

DSR_FIELDS = (
    "id type status receivedAt dueAt completedAt extendedMonths extensionReason "
    "rejectionReason requestedBy"
)


@pytest.fixture(scope="module")
def worker(database_url):
    with running_worker(database_url) as lines:
        yield lines


class Person:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:12]
        self.email = f"erin.{tag}@example.org"
        self.name = f"Erinna Quixley{tag[:4]}"
        self.phone = "+4420794" + str(uuid.uuid4().int)[:5]
        self.user_id = f"crm-{tag}"
        self.anonymous_ids = [f"anon-{tag}-a", f"anon-{tag}-b"]
        self.street = f"{tag[:6]} Lantern Row"
        # Canonical, as it is stored: "0338" would be kept as "338".
        self.ip = str(ipaddress.ip_address(f"2001:db8::{tag[:4]}:{tag[4:8]}"))
        self.user_agent = f"Mozilla/5.0 (Erinna {tag})"

    def values(self) -> list[str]:
        return [
            self.email, self.name, self.phone, self.user_id, *self.anonymous_ids, self.street,
            self.ip, self.user_agent,
        ]  # fmt: skip


def _seed(client, workspace, person: Person) -> str:
    batch: list[dict[str, Any]] = [
        {"type": "track", "anonymousId": person.anonymous_ids[0], "event": "Product Viewed",
         "properties": {"product_id": "p1", "name": "Lamp", "price": 30}},
        {"type": "identify", "anonymousId": person.anonymous_ids[0], "userId": person.user_id,
         "traits": {"email": person.email, "name": person.name, "phone": person.phone}},
        {"type": "identify", "anonymousId": person.anonymous_ids[1], "userId": person.user_id},
        {"type": "track", "userId": person.user_id, "event": "Order Completed",
         "properties": {"order_id": "o-1", "revenue": 30, "shipping_address": person.street,
                        "recipient": person.name}},
    ]  # fmt: skip
    track_batch(client, workspace.write_key, batch)
    ok(record_consent(client, workspace.api_token, person.email, "GRANTED", ip=person.ip,
                      userAgent=person.user_agent), "recordConsent")  # fmt: skip
    return profile_by_email(client, workspace.api_token, person.email, "id")["id"]


def _request(client, token, kind: str, value: str, type_: str, **extra: Any) -> dict[str, Any]:
    body = gql(
        client,
        "mutation($input: DataSubjectRequestInput!) { createDataSubjectRequest(input: $input) "
        f"{{ dataSubjectRequest {{ {DSR_FIELDS} }} errors {{ field code message }} }} }}",
        {"input": {"identifier": {"kind": kind, "value": value}, "type": type_, **extra}},
        token,
    )
    return ok(body, "createDataSubjectRequest")["dataSubjectRequest"]


def _wait(client, token, request_id: str, fields: str = DSR_FIELDS, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = gql(
            client,
            f"query($id: ID!) {{ dataSubjectRequest(id: $id) {{ {fields} }} }}",
            {"id": request_id},
            token,
        )["data"]["dataSubjectRequest"]
        if found["status"] in {"COMPLETED", "REJECTED"}:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"request still {found['status']} after {timeout}s")
        time.sleep(0.2)


def _dump(database_url: str) -> str:
    """Every row of every table in every schema, as text (what a plain dump would hold)."""
    parts: list[str] = []
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{schema}"."{table}" t').fetchall()
            parts.extend(r[0] for r in rows)
    return "\n".join(parts).lower()


def test_access_request_exports_everything_held(client, workspace, worker):
    person = Person()
    _seed(client, workspace, person)
    created = _request(client, workspace.api_token, "email", person.email.upper(), "ACCESS")
    assert created["status"] == "RECEIVED"
    received = datetime.fromisoformat(created["receivedAt"])
    assert datetime.fromisoformat(created["dueAt"]) == due_at(received)
    done = _wait(client, workspace.api_token, created["id"], fields=f"{DSR_FIELDS} export")
    assert done["status"] == "COMPLETED"
    assert done["completedAt"]
    export = done["export"]
    stores = export["stores"]
    assert export["subject"]["profile_id"]
    held = {(i["kind"], i["value"]) for i in stores["identities"]}
    assert {("email", person.email), ("user_id", person.user_id), ("phone", person.phone)} <= held
    assert {("anonymous_id", a) for a in person.anonymous_ids} <= held
    traits = stores["profiles"][0]["traits"]
    assert traits["name"] == person.name
    names = sorted(e["name"] or e["type"] for e in stores["events"])
    assert names == ["Order Completed", "Product Viewed", "identify", "identify"]
    consents = stores["consent_records"]
    assert [(c["purpose"], c["status"], c["ip"]) for c in consents] == [
        ("newsletter", "GRANTED", person.ip)
    ]
    assert [r["type"] for r in stores["data_subject_requests"]] == ["ACCESS"]
    assert "profile_merges" in stores
    assert "suppressions" in stores
    # Nobody else's data: a request for an unknown address completes with nothing held.
    nobody = _request(client, workspace.api_token, "email", "nobody@example.net", "ACCESS")
    empty = _wait(client, workspace.api_token, nobody["id"], fields="status export")
    assert empty["export"]["stores"]["profiles"] == []


def test_erasure_leaves_only_the_tombstone(client, workspace, worker, database_url):
    person = Person()
    _seed(client, workspace, person)
    before = _dump(database_url)
    assert all(v.lower() in before for v in person.values())
    created = _request(client, workspace.api_token, "email", person.email, "ERASURE",
                       note="Asked by phone")  # fmt: skip
    assert _wait(client, workspace.api_token, created["id"])["status"] == "COMPLETED"
    after = _dump(database_url)
    left = [v for v in person.values() if v.lower() in after]
    assert left == [], f"still in the database: {left}"
    tombstones = gql(
        client,
        'query($v: String!) { suppressions(identifier: {kind: "email", value: $v}) '
        "{ reason channel purpose } }",
        {"v": person.email},
        workspace.api_token,
    )["data"]["suppressions"]
    assert {"reason": "erased", "channel": "*", "purpose": "*"} in tombstones
    # The next CRM sync and the next identify bring the address back: it stays unmailable.
    synced = gql(
        client,
        'mutation($e: String!) { upsertProfiles(input: [{identifiers: [{kind: "email", '
        'value: $e}], traits: {plan: "pro"}}]) { profiles { contactable(channel: "email", '
        'purpose: "newsletter") { allowed reason } } errors { message } } }',
        {"e": person.email},
        workspace.api_token,
    )["data"]["upsertProfiles"]
    gate = synced["profiles"][0]["contactable"]
    assert gate["allowed"] is False
    assert gate["reason"].startswith("suppressed: erased")
    track_batch(
        client,
        workspace.write_key,
        [{"type": "identify", "userId": person.user_id, "traits": {"email": person.email}}],
    )
    again = profile_by_email(
        client, workspace.api_token, person.email,
        'contactable(channel: "email", purpose: "transactional") { allowed reason }',
    )["contactable"]  # fmt: skip
    assert again["allowed"] is False


def test_a_request_never_touches_another_workspace(client, workspace, other_workspace, worker):
    person = Person()
    _seed(client, workspace, person)
    _seed(client, other_workspace, person)
    created = _request(client, workspace.api_token, "email", person.email, "ERASURE")
    assert _wait(client, workspace.api_token, created["id"])["status"] == "COMPLETED"
    assert profile_by_email(client, workspace.api_token, person.email, "id") is None
    kept = profile_by_email(
        client, other_workspace.api_token, person.email,
        'traits identities { kind } consents { status } events { edges { node { name } } } '
        'contactable(channel: "email", purpose: "newsletter") { allowed }',
    )  # fmt: skip
    assert kept["traits"]["name"] == person.name
    assert len(kept["events"]["edges"]) == 4
    assert kept["consents"] == [{"status": "GRANTED"}]
    assert kept["contactable"]["allowed"] is True
    foreign = gql(
        client,
        "query($id: ID!) { dataSubjectRequest(id: $id) { id } }",
        {"id": created["id"]},
        other_workspace.api_token,
    )
    assert foreign["data"]["dataSubjectRequest"] is None


def test_rectification_restriction_and_objection(client, workspace, worker):
    person = Person()
    _seed(client, workspace, person)
    token = workspace.api_token
    fixed = _request(client, token, "email", person.email, "RECTIFICATION",
                     corrections={"name": "Erin Q.", "nickname": None})  # fmt: skip
    assert _wait(client, token, fixed["id"])["status"] == "COMPLETED"
    profile = profile_by_email(client, token, person.email, "traits traitSources { key source }")
    assert profile["traits"]["name"] == "Erin Q."
    assert {"key": "name", "source": "rectification"} in profile["traitSources"]

    gate = 'contactable(channel: "email", purpose: "transactional") { allowed reason }'
    restricted = _request(client, token, "user_id", person.user_id, "RESTRICTION")
    assert _wait(client, token, restricted["id"])["status"] == "COMPLETED"
    answer = profile_by_email(client, token, person.email, gate)["contactable"]
    assert answer == {"allowed": False, "reason": answer["reason"]}
    assert answer["reason"].startswith("suppressed: restricted")
    # While restricted, what arrives is stored but not processed into the profile.
    restricted_view = (
        "traits computedTraits { orderCount } events(first: 50) { edges { node { name } } }"
    )
    before = profile_by_email(client, token, person.email, restricted_view)
    track_batch(client, workspace.write_key, [
        {"type": "identify", "userId": person.user_id, "traits": {"plan": "gold"}},
        {"type": "track", "userId": person.user_id, "event": "Order Completed",
         "properties": {"order_id": "o-2", "revenue": 50}},
    ])  # fmt: skip
    during = profile_by_email(client, token, person.email, restricted_view)
    assert during["traits"] == before["traits"]
    assert during["computedTraits"] == before["computedTraits"]
    assert len(during["events"]["edges"]) == len(before["events"]["edges"]) + 2
    lifted = gql(
        client,
        'mutation($v: String!) { liftRestriction(identifier: {kind: "email", value: $v}) '
        "{ lifted errors { message } } }",
        {"v": person.email},
        token,
    )["data"]["liftRestriction"]
    assert lifted["lifted"] >= 1
    assert profile_by_email(client, token, person.email, gate)["contactable"]["allowed"] is True
    track_batch(
        client,
        workspace.write_key,
        [{"type": "identify", "userId": person.user_id, "traits": {"plan": "gold"}}],
    )
    assert profile_by_email(client, token, person.email, "traits")["traits"]["plan"] == "gold"

    objected = _request(client, token, "email", person.email, "OBJECTION")
    assert _wait(client, token, objected["id"])["status"] == "COMPLETED"
    marketing = profile_by_email(
        client, token, person.email,
        'contactable(channel: "email", purpose: "newsletter") { allowed reason }',
    )["contactable"]  # fmt: skip
    assert marketing["allowed"] is False
    assert "objected" in marketing["reason"]
    assert profile_by_email(client, token, person.email, gate)["contactable"]["allowed"] is True


def test_every_consent_change_and_step_is_audited_without_raw_email(
    client, workspace, worker, database_url
):
    person = Person()
    _seed(client, workspace, person)
    created = _request(client, workspace.api_token, "email", person.email, "ACCESS")
    _wait(client, workspace.api_token, created["id"])
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT a::text, action, actor_kind, actor_id, request_id FROM audit_log a "
            "WHERE workspace_id = %s ORDER BY id",
            (workspace.workspace.id,),
        ).fetchall()
        local_id = conn.execute(
            "SELECT id FROM data_subject_requests WHERE workspace_id = %s",
            (workspace.workspace.id,),
        ).fetchone()[0]
    actions = [r[1] for r in rows]
    assert "consent.recorded" in actions
    steps = [r[1] for r in rows if str(local_id) in r[0]]
    assert steps[:3] == ["dsr.received", "dsr.started", "dsr.completed"], steps
    assert all(r[2] and r[3] for r in rows)
    api_rows = [r for r in rows if r[1] in {"consent.recorded", "dsr.received"}]
    assert all(r[2] == "api_token" and r[4] for r in api_rows), api_rows
    for text, *_ in rows:
        assert person.email not in text.lower()
        assert person.name.lower() not in text.lower()


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "APP_DB_ROLE": APP_ROLE,
        "SECRET_KEY": SECRET,
    }
    return subprocess.run(
        [sys.executable, "-c", "from api.cli.main import run; run()", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_cli_files_processes_and_exports(client, workspace, database_url):
    person = Person()
    _seed(client, workspace, person)
    ws = str(workspace.workspace.id)
    created = _cli(database_url, "dsr", "create", "--type", "access", "--value", person.email,
                   "--workspace", ws, "--json")  # fmt: skip
    assert created.returncode == 0, created.stderr
    request_id = json.loads(created.stdout)["id"]
    processed = _cli(database_url, "dsr", "process", request_id, "--workspace", ws)
    assert processed.returncode == 0, processed.stderr
    assert "status: COMPLETED" in processed.stdout
    exported = _cli(database_url, "dsr", "export", request_id, "--workspace", ws)
    assert exported.returncode == 0, exported.stderr
    identifiers = json.loads(exported.stdout)["subject"]["identifiers"]
    assert {"kind": "email", "value": person.email} in identifiers
    listed = _cli(database_url, "dsr", "list", "--workspace", ws, "--json")
    assert request_id in listed.stdout
    bad = _cli(
        database_url, "dsr", "create", "--type", "forget", "--value", "a@b.c", "--workspace", ws
    )
    assert bad.returncode != 0
    assert bad.stderr.startswith("error: --type")
    assert "Traceback" not in bad.stderr
    ropa = _cli(database_url, "compliance", "ropa", "--json")
    assert ropa.returncode == 0, ropa.stderr
    stores = {r["store"] for r in json.loads(ropa.stdout)["records_of_processing"]}
    assert {"profiles", "identities", "events", "consent_records", "suppressions"} <= stores
