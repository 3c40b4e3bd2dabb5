"""`cdp inbound` with a real worker: bounces and complaints sent over SMTP act within seconds."""

import smtplib
import time
from collections.abc import Iterator
from uuid import UUID

import pytest

from api.inbound import InboundServer
from consent import gate
from consent.keys import Keys
from domain import broker as brokers
from domain.personal_data import Subject
from tests.cdp.segments.support import in_uow
from tests.delivery.deliverability import support
from tests.support import factories
from tests.support.database import APP_ROLE, SECRET
from tests.support.proxy import free_port
from tests.support.worker import running_worker

# The promise: suppressed within 5 seconds of the report's arrival.
PROMISE_SECONDS = 5.0


@pytest.fixture
def inbound_server(database_url: str) -> Iterator[InboundServer]:
    broker = brokers.make_broker(None, database_url=database_url, role=APP_ROLE)
    server = InboundServer(database_url, APP_ROLE, broker, SECRET, "127.0.0.1", free_port(),
                           max_bytes=32 * 1024 * 1024)  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _suppressed(database_url: str, ws: UUID) -> dict[str, str]:
    """Suppression reasons by identifier digest (hex), as the database holds them."""
    with factories.seeding(database_url) as db:
        rows = db.execute(
            "SELECT encode(digest, 'hex'), reason FROM suppressions WHERE workspace_id = %s", (ws,)
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def _statuses(database_url: str, ws: UUID) -> dict[UUID, str]:
    with factories.seeding(database_url) as db:
        rows = db.execute(
            "SELECT id, status FROM deliveries WHERE workspace_id = %s", (ws,)
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def test_a_hard_dsn_and_a_complaint_suppress_within_seconds_and_a_soft_dsn_does_not(
    database_url: str, inbound_server: InboundServer
) -> None:
    ann, bob, cyd = "ann@example.org", "bob@example.org", "cyd@example.org"
    sent = support.sent_campaign(database_url, [ann, bob, cyd])
    ws = sent.workspace_id
    with running_worker(database_url) as lines:
        started = time.monotonic()
        with smtplib.SMTP(inbound_server.host, inbound_server.port) as smtp:
            smtp.sendmail("", [sent.return_path(ann)], support.dsn(sent, ann, status="5.1.1"))
            smtp.sendmail("", [f"fbl@bounces.{support.DOMAIN}"], support.arf(sent, bob))
            smtp.sendmail("", [sent.return_path(cyd)],
                          support.dsn(sent, cyd, status="4.2.2", diagnostic="mailbox full"))  # fmt: skip
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                smtp.sendmail("", ["someone@elsewhere.example"], b"Subject: hi\r\n\r\nhi\r\n")
        deadline = started + PROMISE_SECONDS
        while time.monotonic() < deadline and len(_suppressed(database_url, ws)) < 2:
            time.sleep(0.05)
        reasons = sorted(_suppressed(database_url, ws).values())
        assert reasons == ["complaint", "hard_bounce"], (
            f"after {time.monotonic() - started:.1f} s:\n" + "".join(lines[-30:])
        )
        deadline = time.monotonic() + PROMISE_SECONDS
        while time.monotonic() < deadline:
            statuses = _statuses(database_url, ws)
            if statuses[sent.deliveries[cyd]] != "SENT":
                break
            time.sleep(0.05)
    assert statuses == {
        sent.deliveries[ann]: "BOUNCED",
        sent.deliveries[bob]: "COMPLAINED",
        sent.deliveries[cyd]: "DEFERRED",
    }
    digests = {e: Keys(SECRET).identifier_digest(ws, "email", e).hex() for e in (ann, bob, cyd)}
    assert _suppressed(database_url, ws) == {digests[ann]: "hard_bounce", digests[bob]: "complaint"}
    refusals = in_uow(database_url, ws, lambda uow: gate.contactability(uow, [
        Keys(SECRET).hashed(Subject(ws, (sent.profiles[e],), (("email", e),))) for e in (ann, bob, cyd)
    ], channel="email", purpose="newsletter"))  # fmt: skip
    assert [r.reason.split(" (")[0] if r.reason else None for r in refusals] == [
        "suppressed: hard_bounce",
        "suppressed: complaint",
        "no consent recorded",
    ]
    with factories.seeding(database_url) as db:
        stored = db.execute(
            "SELECT state, kind, bounce_class, raw IS NOT NULL FROM inbound_messages"
            " WHERE workspace_id = %s ORDER BY id",
            (ws,),
        ).fetchall()
    assert stored == [
        ("PROCESSED", "dsn", "hard", True),
        ("PROCESSED", "arf", "complaint", True),
        ("PROCESSED", "dsn", "soft", True),
    ]


def test_a_huge_or_malformed_message_is_accepted_and_stored_whole(
    database_url: str, inbound_server: InboundServer
) -> None:
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    rcpt = sent.return_path("ann@example.org")
    huge = (b"Subject: returned with its attachment\r\nContent-Type: multipart/mixed; "
            b'boundary="b"\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n'
            + (b"QUFB" * 19 + b"\r\n") * (20 * 1024 * 1024 // 76) + b"--b--\r\n")  # fmt: skip
    broken = b'Content-Type: multipart/report; boundary="x\r\n\r\n\xff\xfe--x\r\nno end\r\n'
    with smtplib.SMTP(inbound_server.host, inbound_server.port) as smtp:
        assert smtp.sendmail("", [rcpt], huge) == {}
        assert smtp.sendmail("", [rcpt], broken) == {}
    with factories.seeding(database_url) as db:
        sizes = db.execute(
            "SELECT length(raw) FROM inbound_messages WHERE workspace_id = %s ORDER BY id",
            (sent.workspace_id,),
        ).fetchall()
    assert [s[0] for s in sizes] == [len(huge), len(broken)]


def test_a_feedback_report_for_a_shared_domain_goes_to_the_workspace_that_sent_the_message(
    database_url: str, inbound_server: InboundServer
) -> None:
    first = support.sent_campaign(database_url, ["ann@example.org"])
    second = support.sent_campaign(database_url, ["bob@example.org"])  # the same domain
    with smtplib.SMTP(inbound_server.host, inbound_server.port) as smtp:
        smtp.sendmail("", [f"fbl@bounces.{support.DOMAIN}"], support.arf(second, "bob@example.org"))
        smtp.sendmail("", [f"fbl@bounces.{support.DOMAIN}"], support.arf(first, "ann@example.org"))
    with factories.seeding(database_url) as db:
        stored = db.execute(
            "SELECT workspace_id, count(*) FROM inbound_messages WHERE workspace_id IN (%s, %s)"
            " GROUP BY workspace_id",
            (first.workspace_id, second.workspace_id),
        ).fetchall()
    assert dict(stored) == {first.workspace_id: 1, second.workspace_id: 1}
