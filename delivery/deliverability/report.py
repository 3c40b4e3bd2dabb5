"""The deliverability report: each sending domain's rates, and the bulk-sender checklist.

Since 2024 Gmail and Yahoo require of bulk senders: SPF and DKIM, a DMARC
record aligned with From, one-click unsubscribe, TLS, a reverse DNS for the
sending address, and a complaint rate under 0.3% (ideally under 0.1%). The
checklist says, per domain, where each stands and what to do about it. The
DNS items come from the domain's last checks (`verifySendingDomain`, and
the daily re-check); the rates from the messages sent in the window.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from delivery.deliverability import repository as repo
from delivery.sending import domains
from domain.uow import UnitOfWork

WINDOWS = (timedelta(days=7), timedelta(days=30))
COMPLAINT_GOAL = 0.001
COMPLAINT_LIMIT = 0.003
_ORDER = {"PASS": 0, "WARN": 1, "FAIL": 2}


@dataclass(frozen=True)
class Rates:
    sent: int
    hard_bounced: int
    soft_bounced: int
    complained: int

    @property
    def bounce_rate(self) -> float:
        return self.hard_bounced / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complained / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class Item:
    name: str
    status: str  # PASS, WARN, FAIL
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class Environment:
    """What the checklist knows of this deployment besides DNS."""

    relay_tls: bool  # SMTP_TLS is starttls or tls
    public_https: bool  # links in mail (one-click unsubscribe) are https


@dataclass(frozen=True)
class DomainReport:
    domain: domains.SendingDomain
    last_7_days: Rates
    last_30_days: Rates
    checklist: list[Item]


def _dns_item(name: str, prefixes: Sequence[str], checks: Sequence[dict[str, str | None]]) -> Item:
    found = [c for c in checks if any(str(c.get("name", "")).startswith(p) for p in prefixes)]
    if not found:
        return Item(name, "WARN", "not checked yet",
                    "Run verifySendingDomain once the records are published.")  # fmt: skip
    worst = max(found, key=lambda c: _ORDER.get(str(c.get("status")), 1))
    status = str(worst.get("status") or "WARN")
    if status == "PASS":
        return Item(name, "PASS", "; ".join(str(c.get("name")) for c in found) + ": pass")
    return Item(name, status, f"{worst.get('name')}: {worst.get('found') or 'not found'}",
                worst.get("fix"))  # fmt: skip


def _complaints(rates: Rates) -> Item:
    rate = rates.complaint_rate
    detail = f"{rate:.3%} over 30 days ({rates.complained} of {rates.sent} sent)"
    if rate < COMPLAINT_GOAL:
        return Item("Complaint rate under 0.1%", "PASS", detail)
    fix = ("Send only to people who asked for this mail, make the unsubscribe link easy to "
           "find, and stop mailing people who have not opened in months.")  # fmt: skip
    status = "WARN" if rate < COMPLAINT_LIMIT else "FAIL"
    return Item("Complaint rate under 0.1%", status, detail, fix)


def checklist(domain: domains.SendingDomain, last_30_days: Rates, env: Environment) -> list[Item]:
    checks = domain.checks
    items = [
        _dns_item("SPF", ("SPF",), checks),
        _dns_item("DKIM", ("DKIM ",), checks),
        _dns_item("DMARC", ("DMARC",), checks),
        _dns_item("Alignment with From", ("DKIM alignment", "SPF alignment"), checks),
        _dns_item("Reverse DNS (PTR) of the relay", ("PTR",), checks),
    ]
    if items[-1].detail == "not checked yet":
        items[-1] = Item(items[-1].name, "WARN", "the relay's address is not known here",
                         "Set RELAY_IP to the address your relay sends from, or check with "
                         "your provider that it has a reverse DNS.")  # fmt: skip
    tls_fix = "Set SMTP_TLS=starttls (or tls) if your relay offers it."
    https_fix = "Set PUBLIC_URL to this server's public https address."
    items += [
        Item("TLS to the relay", "PASS", "SMTP_TLS is on")
        if env.relay_tls
        else Item("TLS to the relay", "WARN", "mail goes to the relay without TLS", tls_fix),
        Item("One-click unsubscribe", "PASS", "every message carries List-Unsubscribe and "
             "List-Unsubscribe-Post (RFC 8058)")
        if env.public_https
        else Item("One-click unsubscribe", "WARN", "every message carries the headers, but "
                  "their link is not https", https_fix),
    ]  # fmt: skip
    items.append(_complaints(last_30_days))
    return items


async def build(uow: UnitOfWork, env: Environment, *, now: datetime) -> list[DomainReport]:
    found = await domains.list_all(uow)
    ids = [d.id for d in found]
    windows = [await repo.domain_counts(uow, ids, since=now - w) for w in WINDOWS]
    empty = repo.DomainCounts(0, 0, 0, 0)

    def rates(counts: dict[UUID, repo.DomainCounts], domain_id: UUID) -> Rates:
        c = counts.get(domain_id, empty)
        return Rates(c.sent, c.hard_bounced, c.soft_bounced, c.complained)

    reports = []
    for domain in found:
        week, month = rates(windows[0], domain.id), rates(windows[1], domain.id)
        reports.append(DomainReport(domain, week, month, checklist(domain, month, env)))
    return reports
