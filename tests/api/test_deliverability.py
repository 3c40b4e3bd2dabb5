"""Deliverability through the API: verifySendingDomain against a local DNS server, the report,
the guard's reason on a campaign, and relay webhooks over HTTP."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from api.app import create_app
from delivery.deliverability.webhooks import generic
from tests.api.test_campaigns import _first
from tests.conftest import gql, make_settings, new_workspace
from tests.delivery.deliverability import support
from tests.support import factories
from tests.support.dns_server import DnsServer, SilentServer

DNS_TIMEOUT = 1.0
ADD = 'mutation { addSendingDomain(domain: "shop.example") { sendingDomain { id dnsRecords { type name value } } errors { message } } }'
VERIFY = (
    "mutation($id: ID!) { verifySendingDomain(id: $id) { sendingDomain { status checkedAt "
    "checks { name status found expected fix } } errors { code message } } }"
)
REPORT = (
    "{ deliverabilityReport { domains { sendingDomain { domain } last7Days { sent complained "
    "complaintRate } last30Days { sent hardBounced } checklist { name status detail fix } } } }"
)
GENERIC_SECRET = "generic-webhook-secret-for-tests"


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


def _client(database_url: str, **settings: Any) -> TestClient:
    return TestClient(
        create_app(make_settings(database_url, **settings), database_url=database_url)
    )


def _publish(dns: DnsServer, records: list[dict[str, str]]) -> None:
    for record in records:
        dns.records.setdefault((record["name"], record["type"]), []).append(record["value"])


def test_published_records_verify_and_a_broken_one_fails_with_a_fix(database_url, dns):
    token = new_workspace(database_url, "dns").api_token
    with _client(database_url, dns_resolver=dns.address, dns_timeout=DNS_TIMEOUT) as client:
        added = _first(gql(client, ADD, token=token))["sendingDomain"]
        pending = _first(gql(client, VERIFY, {"id": added["id"]}, token=token))["sendingDomain"]
        assert pending["status"] == "FAILING"
        assert {c["name"] for c in pending["checks"] if c["status"] == "FAIL"} >= {"SPF", "DMARC"}

        _publish(dns, added["dnsRecords"])
        # The relay (SMTP_HOST, 127.0.0.1 here) is known by its address: its reverse DNS too.
        dns.records[("1.0.0.127.in-addr.arpa", "PTR")] = ["relay.shop.example"]
        dns.records[("relay.shop.example", "A")] = ["127.0.0.1"]
        verified = _first(gql(client, VERIFY, {"id": added["id"]}, token=token))["sendingDomain"]
        assert verified["status"] == "VERIFIED", verified["checks"]
        assert verified["checkedAt"] is not None
        assert all(c["status"] == "PASS" for c in verified["checks"]), verified["checks"]

        dns.records.pop(("_dmarc.shop.example", "TXT"))
        broken = _first(gql(client, VERIFY, {"id": added["id"]}, token=token))["sendingDomain"]
        assert broken["status"] == "FAILING"
        [dmarc] = [c for c in broken["checks"] if c["name"] == "DMARC"]
        assert dmarc["status"] == "FAIL"
        assert "_dmarc" in dmarc["fix"]
        assert dmarc["expected"].startswith("v=DMARC1")
    with factories.seeding(database_url) as db:
        changes = db.execute(
            "SELECT details->>'from', details->>'to' FROM audit_log"
            " WHERE action = 'sending_domain.status_changed' ORDER BY at"
        ).fetchall()
    assert [tuple(c) for c in changes][-3:] == [
        ("PENDING", "FAILING"),
        ("FAILING", "VERIFIED"),
        ("VERIFIED", "FAILING"),
    ]


def test_an_unresponsive_dns_server_gives_a_warning_within_the_time_limit(database_url):
    token = new_workspace(database_url, "silent").api_token
    silent = SilentServer()
    try:
        with _client(database_url, dns_resolver=silent.address, dns_timeout=DNS_TIMEOUT) as client:
            added = _first(gql(client, ADD, token=token))["sendingDomain"]
            started = time.monotonic()
            found = _first(gql(client, VERIFY, {"id": added["id"]}, token=token))["sendingDomain"]
            elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert elapsed < DNS_TIMEOUT + 2.0
    assert found["status"] == "PENDING"
    assert {c["status"] for c in found["checks"]} == {"WARN"}
    assert all("says nothing about your records" in c["fix"] for c in found["checks"]), found


def test_the_report_gives_rates_and_the_checklist_and_the_guard_shows_its_reason(
    client, database_url
):
    emails = [f"p{i}@example.org" for i in range(4)]
    sent = support.sent_campaign(database_url, emails, extra_sent=996)
    ws = sent.workspace_id
    for email in emails:
        support.keep(database_url, ws, support.event(
            kind="complaint", bounce_class="complaint", recipients=(email,),
            return_path=sent.return_path(email),
        ))  # fmt: skip
    support.process(database_url, ws)
    token = sent.api_token
    body = gql(client, REPORT, token=token)
    assert "errors" not in body, body
    [domain] = body["data"]["deliverabilityReport"]["domains"]
    assert domain["sendingDomain"]["domain"] == "shop.example"
    assert domain["last7Days"] == {"sent": 1000, "complained": 4, "complaintRate": 0.004}
    items = {i["name"]: i for i in domain["checklist"]}
    assert items["Complaint rate under 0.1%"]["status"] == "FAIL"
    assert items["Complaint rate under 0.1%"]["fix"]
    assert items["SPF"]["status"] == "WARN"  # never checked
    assert set(items) >= {"SPF", "DKIM", "DMARC", "Alignment with From", "TLS to the relay",
                          "One-click unsubscribe", "Reverse DNS (PTR) of the relay"}  # fmt: skip
    campaign = gql(client, "{ campaigns(first: 5) { edges { node { status pausedReason } } } }",
                   token=token)["data"]["campaigns"]["edges"][0]["node"]  # fmt: skip
    assert campaign["status"] == "PAUSED"
    assert campaign["pausedReason"].startswith("complaint rate 0.40% passed 0.3%")


def test_a_signed_webhook_is_stored_and_acted_on_and_a_tampered_one_refused(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    ann = "ann@example.org"
    body = orjson.dumps({"events": [{
        "type": "bounce", "recipient": ann, "status": "5.1.1", "id": "relay-77",
        "return_path": sent.return_path(ann), "at": datetime.now(UTC).isoformat(),
    }]})  # fmt: skip
    signature = generic.sign(GENERIC_SECRET, body, datetime.now(UTC))
    with _client(database_url, webhook_generic_secret=GENERIC_SECRET) as client:
        tampered = body.replace(b"5.1.1", b"5.1.2")
        refused = client.post("/webhooks/generic", content=tampered,
                              headers={"X-CDP-Signature": signature})  # fmt: skip
        assert refused.status_code == 401
        assert client.post("/webhooks/nobody", content=body).status_code == 404
        unsigned = client.post("/webhooks/sendgrid", content=b"[]")
        assert unsigned.status_code == 401  # not configured: refused, never accepted
        accepted = client.post("/webhooks/generic", content=body,
                               headers={"X-CDP-Signature": signature})  # fmt: skip
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {"received": 1, "stored": 1}
    support.process(database_url, sent.workspace_id)
    with factories.seeding(database_url) as db:
        [(source, reason)] = db.execute(
            "SELECT m.source, s.reason FROM inbound_messages m JOIN suppressions s"
            " ON s.workspace_id = m.workspace_id WHERE m.workspace_id = %s",
            (sent.workspace_id,),
        ).fetchall()
    assert (source, reason) == ("webhook:generic", "hard_bounce")
