"""Sending domains: the DKIM key made for a domain signs what its published record verifies."""

import base64
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any
from uuid import UUID

import dkim as dkimpy
import psycopg

from delivery.sending import domains
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow
from tests.conftest import gql
from tests.support.database import SECRET

FIELDS = "id domain dkimSelector status dnsRecords { type name value } checks { name }"
ADD = f"mutation($d: String!) {{ addSendingDomain(domain: $d) {{ sendingDomain {{ {FIELDS} }} errors {{ field code message }} }} }}"
ROTATE = f"mutation($id: ID!) {{ rotateDkimKey(id: $id) {{ sendingDomain {{ {FIELDS} }} errors {{ code }} }} }}"


def _add(client, token: str, domain: str) -> dict[str, Any]:
    body = gql(client, ADD, {"d": domain}, token=token)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["addSendingDomain"]
    return payload


def _dkim_records(domain: dict[str, Any]) -> dict[str, str]:
    return {
        r["name"].split("._domainkey.")[0]: r["value"]
        for r in domain["dnsRecords"]
        if "._domainkey." in r["name"]
    }


def _signed_message(database_url: str, ws: UUID, domain_id: UUID) -> bytes:
    async def sign(uow: UnitOfWork) -> bytes:
        [signer] = await domains.signers(uow, SECRET, await domains.get(uow, domain_id))
        message = EmailMessage()
        message["From"] = "news@shop.example"
        message["To"] = "ann@example.org"
        message["Subject"] = "Hello"
        message.set_content("Hi Ann")
        return signer.sign(message.as_bytes(policy=SMTP))

    return in_uow(database_url, ws, sign)


def _verifies(signed: bytes, records: dict[str, str]) -> bool:
    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return records[name.decode().split("._domainkey.")[0]].encode()

    return bool(dkimpy.verify(signed, dnsfunc=lookup))


def test_a_new_domain_answers_its_dns_records_and_its_key_signs_what_they_verify(
    client, workspace, database_url
):
    token, ws = workspace.api_token, workspace.workspace.id
    payload = _add(client, token, "  Shop.Example. ")
    assert payload["errors"] == []
    domain = payload["sendingDomain"]
    assert domain["domain"] == "shop.example"
    assert domain["status"] == "PENDING"
    assert domain["checks"] == []
    selector = domain["dkimSelector"]
    records = {(r["type"], r["name"]): r["value"] for r in domain["dnsRecords"]}
    assert records[("TXT", f"{selector}._domainkey.shop.example")].startswith("v=DKIM1; k=rsa; p=")
    assert records[("TXT", "shop.example")].startswith("v=spf1 ")
    assert records[("TXT", "_dmarc.shop.example")].startswith("v=DMARC1; p=none")
    assert ("MX", "bounces.shop.example") in records

    domain_id = UUID(_local(domain["id"]))
    signed = _signed_message(database_url, ws, domain_id)
    assert f"s={selector};".encode() in signed.split(b"\r\n", 1)[0]
    assert _verifies(signed, _dkim_records(domain))

    with psycopg.connect(database_url) as conn:
        [(stored,)] = conn.execute(
            "SELECT private_key FROM dkim_keys WHERE domain_id = %s", (domain_id,)
        ).fetchall()
    assert b"PRIVATE KEY" not in bytes(stored)


def _local(global_id: str) -> str:
    return base64.b64decode(global_id).decode().split(":", 1)[1]


def test_a_rotation_keeps_the_old_key_signing_until_the_new_record_is_seen(
    client, workspace, database_url
):
    token, ws = workspace.api_token, workspace.workspace.id
    first = _add(client, token, "rotate.example")["sendingDomain"]
    rotated = gql(client, ROTATE, {"id": first["id"]}, token=token)["data"]["rotateDkimKey"]
    domain = rotated["sendingDomain"]
    published = _dkim_records(domain)
    assert len(published) == 2
    assert domain["dkimSelector"] == first["dkimSelector"]  # the old key still signs
    [new_selector] = set(published) - {first["dkimSelector"]}
    domain_id = UUID(_local(first["id"]))
    assert _verifies(_signed_message(database_url, ws, domain_id), published)

    async def seen(uow: UnitOfWork) -> None:
        await domains.mark_published(uow, domain_id, new_selector)

    in_uow(database_url, ws, seen)
    body = gql(client, f"{{ sendingDomains {{ {FIELDS} }} }}", token=token)
    [after] = [d for d in body["data"]["sendingDomains"] if d["id"] == first["id"]]
    assert after["dkimSelector"] == new_selector
    assert set(_dkim_records(after)) == {new_selector}  # the old record may go
    signed = _signed_message(database_url, ws, domain_id)
    assert f"s={new_selector};".encode() in signed.split(b"\r\n", 1)[0]
    assert _verifies(signed, published)


def test_bad_or_repeated_domains_are_refused(client, workspace):
    token = workspace.api_token
    assert _add(client, token, "twice.example")["errors"] == []
    [error] = _add(client, token, "TWICE.example")["errors"]
    assert (error["field"], error["code"]) == ("domain", "CONFLICT")
    for bad in ("localhost", "10.0.0.1", "exa mple.com", "", "-bad-.example"):
        [error] = _add(client, token, bad)["errors"]
        assert (error["field"], error["code"]) == ("domain", "INVALID"), bad


def test_adding_a_domain_needs_the_admin_scope(client, workspace):
    body = gql(
        client,
        "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token errors { code } } }",
        {"i": {"name": "reader", "scopes": ["messages:read"]}},
        token=workspace.api_token,
    )
    token = body["data"]["createApiToken"]["token"]
    refused = gql(client, ADD, {"d": "scoped.example"}, token=token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    listed = gql(client, "{ sendingDomains { domain } }", token=token)
    assert "errors" not in listed
