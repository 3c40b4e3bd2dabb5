"""The daily upkeep: every sending domain re-checked once a day, its status change audited, and
raw reports emptied after their retention."""

from datetime import UTC, datetime, timedelta

from delivery.deliverability import actors, verification
from delivery.sending import domains
from domain.clock import FrozenClock
from tests.delivery.deliverability import support
from tests.support import factories
from tests.support.dns_server import DnsServer
from tests.support.jobs import as_worker


def _run_upkeep(database_url: str, dns: DnsServer, at: datetime) -> None:
    settings = actors.UpkeepSettings(
        domains.DnsSettings(relay_host="relay.example.net", return_path_host="in.example.net"),
        verification.Resolver(dns.address, 1.0), raw_retention=timedelta(days=30),
    )  # fmt: skip
    as_worker(database_url, lambda: actors.run_upkeep(settings), clock=FrozenClock(at))


def _domain(database_url: str, ws: object) -> tuple[str, datetime | None]:
    with factories.seeding(database_url) as db:
        row = db.execute(
            "SELECT status, checked_at FROM sending_domains WHERE workspace_id = %s", (ws,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_domains_are_rechecked_daily_and_old_raw_reports_emptied(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    ws = sent.workspace_id
    support.keep(database_url, ws, support.mail(b"Subject: hello\r\n\r\nhi\r\n",
                                                rcpt=sent.return_path("ann@example.org")))  # fmt: skip
    support.process(database_url, ws)
    now = datetime.now(UTC)
    with DnsServer() as dns:
        _run_upkeep(database_url, dns, now)
        status, checked = _domain(database_url, ws)
        assert (status, checked) == ("FAILING", now)  # nothing is published
        _run_upkeep(database_url, dns, now + timedelta(hours=23))
        assert _domain(database_url, ws)[1] == now  # checked less than a day ago
        _run_upkeep(database_url, dns, now + timedelta(days=31))
        assert _domain(database_url, ws)[1] == now + timedelta(days=31)
    with factories.seeding(database_url) as db:
        audited = db.execute(
            "SELECT count(*) FROM audit_log WHERE workspace_id = %s"
            " AND action = 'sending_domain.status_changed'",
            (ws,),
        ).fetchone()
        raw = db.execute(
            "SELECT raw IS NULL, outcome IS NOT NULL FROM inbound_messages WHERE workspace_id = %s",
            (ws,),
        ).fetchall()
    assert audited is not None
    assert audited[0] == 1  # PENDING to FAILING, once
    assert raw == [(True, True)]  # the bytes are gone after 30 days; what was found stays
