"""A campaign already sent, reports about it, and processing them as the worker would."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from consent import audit
from delivery.deliverability import actors, inbound
from delivery.deliverability import repository as repo
from delivery.sending import domains, message
from domain.clock import Clock
from domain.ids import new_id
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow
from tests.conftest import new_workspace
from tests.support import factories
from tests.support.database import SECRET
from tests.support.jobs import as_worker

ACTOR = audit.Actor.system("test")
DOMAIN = "shop.example"


@dataclass(frozen=True)
class Sent:
    workspace_id: UUID
    campaign_id: UUID
    profiles: dict[str, UUID]  # email → profile
    deliveries: dict[str, UUID]  # email → delivery
    api_token: str = ""

    def return_path(self, email: str) -> str:
        return message.return_path(SECRET, self.deliveries[email], DOMAIN)

    def message_id(self, email: str) -> str:
        return message.message_id(self.deliveries[email], DOMAIN)


def sent_campaign(
    database_url: str, emails: Sequence[str], *, status: str = "SENDING", extra_sent: int = 0
) -> Sent:
    """A workspace with a sending domain and a campaign sent to `emails` (and `extra_sent` more)."""
    created = new_workspace(database_url, "deliverability")
    ws = created.workspace.id
    in_uow(database_url, ws, lambda uow: domains.add(uow, ACTOR, SECRET, DOMAIN, ed25519=False))
    campaign_id = new_id()
    profiles: dict[str, UUID] = {}
    deliveries: dict[str, UUID] = {}
    now = datetime.now(UTC)
    with factories.seeding(database_url) as db:
        [domain_id] = db.execute(
            "SELECT id FROM sending_domains WHERE workspace_id = %s", (ws,)
        ).fetchone() or [None]
        db.execute(
            "INSERT INTO campaigns (workspace_id, id, name, status, segment_id, template_id,"
            " template_version, purpose, from_email, domain_id, started_at)"
            " VALUES (%s, %s, 'spring', %s, %s, %s, 1, 'newsletter', 'news@shop.example', %s, %s)",
            (ws, campaign_id, status, new_id(), new_id(), domain_id, now),
        )
        for address in emails:
            pid = factories.profile(db, ws, identifiers=[("email", address)])
            profiles[address] = pid
            deliveries[address] = _delivery(db, ws, campaign_id, pid, now)
        for _ in range(extra_sent):
            _delivery(db, ws, campaign_id, factories.profile(db, ws), now)
        db.commit()
    return Sent(ws, campaign_id, profiles, deliveries, created.api_token)


def _delivery(db: object, ws: UUID, campaign_id: UUID, profile_id: UUID, at: datetime) -> UUID:
    delivery_id = new_id()
    db.execute(  # type: ignore[attr-defined]
        "INSERT INTO deliveries (workspace_id, id, campaign_id, profile_id, status, message_id,"
        " due_at, sent_at) VALUES (%s, %s, %s, %s, 'SENT', %s, %s, %s)",
        (ws, delivery_id, campaign_id, profile_id, message.message_id(delivery_id, DOMAIN), at, at),
    )
    return delivery_id


def keep(database_url: str, ws: UUID, *reports: repo.NewReport) -> None:
    async def work(uow: UnitOfWork) -> None:
        await inbound.keep(uow, *reports)

    in_uow(database_url, ws, work)


def event(
    *, kind: str, bounce_class: str, recipients: tuple[str, ...] = (), status: str | None = None,
    return_path: str | None = None, message_id: str | None = None, external_id: str | None = None,
) -> repo.NewReport:  # fmt: skip
    """A relay's webhook event, already classified."""
    return repo.NewReport(
        id=new_id(), source="webhook:test", received_at=datetime.now(UTC), size=0,
        mail_from=return_path, external_id=external_id or str(new_id()), kind=kind,
        bounce_class=bounce_class, status_code=status, recipients=recipients,
        message_id=message_id,
    )  # fmt: skip


def mail(raw: bytes, *, rcpt: str) -> repo.NewReport:
    return inbound.mail_report(mail_from="", rcpt_to=(rcpt,), raw=raw, at=datetime.now(UTC))


def process(database_url: str, ws: UUID, *, clock: Clock | None = None) -> int:
    """Run the workspace's processing job body, as a worker would; how many reports it took."""
    return as_worker(database_url, lambda: actors.run_processing(ws), clock=clock)


def dsn(
    sent: Sent, address: str, *, status: str, action: str = "failed", diagnostic: str = "",
) -> bytes:  # fmt: skip
    """An RFC 3464 report about the message sent to `address`, as a receiving MTA writes it."""
    return _report(
        "delivery-status", sent.return_path(address), "Undelivered Mail Returned to Sender",
        f"Your message to {address} could not be delivered.",
        "message/delivery-status",
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic or status + ' no such user'}\r\n",
        "text/rfc822-headers", _original(sent, address, body=False),
    )  # fmt: skip


def arf(sent: Sent, address: str, *, redacted: bool = False) -> bytes:
    """An RFC 5965 abuse report about the message sent to `address`."""
    rcpt = "" if redacted else f"Original-Rcpt-To: {address}\r\n"
    shown = "redacted@isp.example.net" if redacted else address
    return _report(
        "feedback-report", f"fbl@bounces.{DOMAIN}", "Abuse report",
        "This is an email abuse report.",
        "message/feedback-report",
        f"Feedback-Type: abuse\r\nUser-Agent: isp-fbl/1.0\r\nVersion: 1\r\n{rcpt}",
        "message/rfc822", _original(sent, address, body=True, shown=shown),
    )  # fmt: skip


def _report(
    report_type: str, to: str, subject: str, text: str, *parts: str
) -> bytes:  # fmt: skip
    """A multipart/report: the text, then (content type, body) pairs."""
    boundary = f"b{new_id().hex}"
    second_type, second, third_type, third = parts
    head = (
        f"From: MAILER-DAEMON@mx.example.org\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="{boundary}"\r\n'
    )
    parts = (
        head,
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n{text}\r\n",
        f"--{boundary}\r\nContent-Type: {second_type}\r\n\r\n{second}\r\n",
        f"--{boundary}\r\nContent-Type: {third_type}\r\n\r\n{third}\r\n",
        f"--{boundary}--\r\n",
    )
    return "\r\n".join(parts).encode()


def _original(sent: Sent, address: str, *, body: bool, shown: str | None = None) -> str:
    headers = (
        f"Return-Path: <{sent.return_path(address)}>\r\nFrom: Shop <news@shop.example>\r\n"
        f"To: {shown or address}\r\nSubject: Spring sale\r\n"
        f"Message-ID: {sent.message_id(address)}\r\n"
    )
    return headers + ("\r\nHello\r\n" if body else "")


def days_later(days: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)
