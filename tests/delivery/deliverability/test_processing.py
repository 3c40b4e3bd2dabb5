"""Reports acted on against PostgreSQL: suppression, delivery status, audit, events, the guard."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from consent import gate
from consent.keys import Keys
from delivery.deliverability import actors, guard
from domain.clock import FrozenClock
from domain.ids import new_id
from domain.personal_data import Subject
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow
from tests.delivery.deliverability import support
from tests.delivery.deliverability.support import Sent, event, keep, process
from tests.support import factories
from tests.support.database import SECRET
from tests.support.jobs import as_worker


def _suppressed(
    database_url: str, sent: Sent, email: str, purpose: str = "newsletter",
    at: datetime | None = None,
) -> str:  # fmt: skip
    """The suppression the contact gate refuses this address for (at `at`), or "" when none."""

    async def ask(uow: UnitOfWork) -> str:
        subject = Keys(SECRET).hashed(
            Subject(sent.workspace_id, (sent.profiles[email],), (("email", email),))
        )
        [answer] = await gate.contactability(uow, [subject], channel="email", purpose=purpose)
        reason = answer.reason or ""
        return reason if reason.startswith("suppressed:") else ""

    return in_uow(database_url, sent.workspace_id, ask, clock=FrozenClock(at) if at else None)


def _suppressions(database_url: str, ws: UUID) -> list[tuple[str, str]]:
    with factories.seeding(database_url) as db:
        rows = db.execute(
            "SELECT reason, purpose FROM suppressions WHERE workspace_id = %s ORDER BY reason",
            (ws,),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _delivery(database_url: str, sent: Sent, email: str) -> tuple[str, str | None]:
    with factories.seeding(database_url) as db:
        row = db.execute(
            "SELECT status, reason FROM deliveries WHERE workspace_id = %s AND id = %s",
            (sent.workspace_id, sent.deliveries[email]),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def _reports(database_url: str, ws: UUID) -> list[tuple[str, str | None, UUID | None]]:
    with factories.seeding(database_url) as db:
        rows = db.execute(
            "SELECT state, outcome, delivery_id FROM inbound_messages WHERE workspace_id = %s"
            " ORDER BY id",
            (ws,),
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _audit(database_url: str, ws: UUID) -> list[str]:
    with factories.seeding(database_url) as db:
        rows = db.execute(
            "SELECT action FROM audit_log WHERE workspace_id = %s ORDER BY at, action", (ws,)
        ).fetchall()
    return [r[0] for r in rows]


def test_a_hard_bounce_suppresses_the_address_marks_the_delivery_and_is_audited(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org", "bob@example.org"])
    ann = "ann@example.org"
    keep(database_url, sent.workspace_id, event(
        kind="bounce", bounce_class="hard", recipients=(ann,), status="5.1.1",
        return_path=sent.return_path(ann),
    ))  # fmt: skip
    assert process(database_url, sent.workspace_id) == 1
    assert _suppressions(database_url, sent.workspace_id) == [("hard_bounce", "*")]
    assert _suppressed(database_url, sent, ann).startswith("suppressed: hard_bounce")
    assert _suppressed(database_url, sent, "bob@example.org") == ""
    status, reason = _delivery(database_url, sent, ann)
    assert status == "BOUNCED"
    assert reason is not None
    assert "5.1.1" in reason
    [(state, outcome, delivery_id)] = _reports(database_url, sent.workspace_id)
    assert (state, delivery_id) == ("PROCESSED", sent.deliveries[ann])
    assert outcome is not None
    assert "suppressed" in outcome
    assert {"suppression.added", "delivery.bounced"} <= set(_audit(database_url, sent.workspace_id))


def test_a_complaint_suppresses_marketing_and_lands_as_an_event(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    ann = "ann@example.org"
    keep(database_url, sent.workspace_id, event(
        kind="complaint", bounce_class="complaint", recipients=(ann,),
        message_id=sent.message_id(ann),
    ))  # fmt: skip
    process(database_url, sent.workspace_id)
    assert _suppressions(database_url, sent.workspace_id) == [("complaint", "marketing")]
    assert _suppressed(database_url, sent, ann).startswith("suppressed: complaint")
    assert _suppressed(database_url, sent, ann, purpose="transactional") == ""
    assert _delivery(database_url, sent, ann)[0] == "COMPLAINED"
    with factories.seeding(database_url) as db:
        found = db.execute(
            "SELECT profile_id, properties->>'delivery_id' FROM events"
            " WHERE workspace_id = %s AND name = 'Email Complained'",
            (sent.workspace_id,),
        ).fetchall()
    assert found == [(sent.profiles[ann], str(sent.deliveries[ann]))]


def test_a_soft_bounce_defers_and_three_on_separate_days_within_two_weeks_suppress(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    ann, ws = "ann@example.org", sent.workspace_id
    # Noon, so that the first two reports, a quarter of an hour apart, share their day.
    start = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)

    def soft(days: float) -> None:
        at = start + timedelta(days=days)
        report = event(kind="bounce", bounce_class="soft", recipients=(ann,), status="4.2.2",
                       return_path=sent.return_path(ann))  # fmt: skip
        keep(database_url, ws, replace(report, received_at=at))
        process(database_url, ws, clock=FrozenClock(at))

    soft(0)
    assert _delivery(database_url, sent, ann)[0] == "DEFERRED"
    assert _suppressions(database_url, ws) == []
    soft(0.01)  # the same day again: still one day
    soft(5)
    assert _suppressions(database_url, ws) == []
    soft(13)  # the 14th day from the first: within the two weeks
    assert _suppressions(database_url, ws) == [("soft_bounce", "*")]
    later = start + timedelta(days=13)
    assert _suppressed(database_url, sent, ann, at=later).startswith("suppressed: soft_bounce")


def test_soft_bounces_spread_over_more_than_two_weeks_do_not_suppress(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    ann, ws = "ann@example.org", sent.workspace_id
    start = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    for days in (0, 10, 14):  # the third falls on the 15th day: the first is out of the window
        at = start + timedelta(days=days)
        report = event(kind="bounce", bounce_class="soft", recipients=(ann,), status="4.2.2",
                       return_path=sent.return_path(ann))  # fmt: skip
        keep(database_url, ws, replace(report, received_at=at))
        process(database_url, ws, clock=FrozenClock(at))
    assert _suppressions(database_url, ws) == []


def test_a_report_that_names_no_delivery_or_a_stranger_changes_nothing(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    ann, ws = "ann@example.org", sent.workspace_id
    forged = sent.return_path(ann).replace("b-", "b-a", 1)
    keep(database_url, ws,
         event(kind="bounce", bounce_class="hard", recipients=(ann,), status="5.1.1",
               return_path=forged),
         event(kind="bounce", bounce_class="hard", recipients=("someone@else.example",),
               status="5.1.1", return_path=sent.return_path(ann)),
         # A Message-ID can be guessed: alone, with no address named, it suppresses nothing.
         event(kind="bounce", bounce_class="hard", status="5.1.1",
               message_id=sent.message_id(ann)))  # fmt: skip
    assert process(database_url, ws) == 3
    assert _suppressions(database_url, ws) == []
    assert _delivery(database_url, sent, ann)[0] == "SENT"
    outcomes = [outcome for _, outcome, _ in _reports(database_url, ws)]
    assert any("matched no delivery" in (o or "") for o in outcomes)
    assert sum("nothing was suppressed" in (o or "") for o in outcomes) == 2


def test_a_redacted_complaint_suppresses_the_recipients_addresses(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    keep(database_url, sent.workspace_id, event(
        kind="complaint", bounce_class="complaint", message_id=sent.message_id("ann@example.org"),
    ))  # fmt: skip
    process(database_url, sent.workspace_id)
    assert _suppressions(database_url, sent.workspace_id) == [("complaint", "marketing")]


def test_a_webhook_event_delivered_twice_is_acted_on_once(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    ann, ws = "ann@example.org", sent.workspace_id
    twice = event(kind="bounce", bounce_class="hard", recipients=(ann,), status="5.1.1",
                  return_path=sent.return_path(ann), external_id="relay-1")  # fmt: skip
    keep(database_url, ws, twice)
    keep(database_url, ws, replace(twice, id=new_id()))
    assert process(database_url, ws) == 1


def test_the_guard_pauses_a_campaign_past_the_complaint_rate_once_enough_was_sent(database_url):
    emails = [f"p{i}@example.org" for i in range(5)]
    sent = support.sent_campaign(database_url, emails, extra_sent=995)
    ws = sent.workspace_id
    for email in emails[:3]:  # 3 of 1,000: 0.3%, not past it
        keep(database_url, ws, event(kind="complaint", bounce_class="complaint",
                                     recipients=(email,), return_path=sent.return_path(email)))  # fmt: skip
    process(database_url, ws)
    assert _campaign(database_url, sent) == ("SENDING", None)
    keep(database_url, ws, event(kind="complaint", bounce_class="complaint",
                                 recipients=(emails[3],), return_path=sent.return_path(emails[3])))  # fmt: skip
    process(database_url, ws)
    status, reason = _campaign(database_url, sent)
    assert status == "PAUSED"
    assert reason is not None
    assert "complaint rate 0.40%" in reason
    assert "campaign.paused" in _audit(database_url, ws)


def test_the_guard_waits_for_enough_messages_before_judging():
    assert not guard.judge(guard.repo.CampaignCounts(sent=999, bounced=500, complained=500)).pause
    assert guard.judge(guard.repo.CampaignCounts(sent=1000, bounced=51, complained=0)).pause
    assert not guard.judge(guard.repo.CampaignCounts(sent=1000, bounced=50, complained=3)).pause


def _campaign(database_url: str, sent: Sent) -> tuple[str, str | None]:
    with factories.seeding(database_url) as db:
        row = db.execute(
            "SELECT status, paused_reason FROM campaigns WHERE workspace_id = %s AND id = %s",
            (sent.workspace_id, sent.campaign_id),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_mail_to_the_list_unsubscribe_address_unsubscribes_like_the_one_click_link(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    ann, ws = "ann@example.org", sent.workspace_id
    rcpt = sent.return_path(ann)
    raw = f"From: {ann}\r\nTo: {rcpt}\r\nSubject: unsubscribe\r\n\r\n\r\n".encode()
    keep(database_url, ws, support.mail(raw, rcpt=rcpt))
    process(database_url, ws)
    assert _suppressions(database_url, ws) == [("unsubscribed", "newsletter")]
    with factories.seeding(database_url) as db:
        [(status, source)] = db.execute(
            "SELECT status, source FROM consent_records WHERE workspace_id = %s", (ws,)
        ).fetchall()
    assert (status, source) == ("WITHDRAWN", "mailto-unsubscribe")
    with factories.seeding(database_url) as db:
        [(properties,)] = db.execute(
            "SELECT properties FROM events WHERE workspace_id = %s AND name = 'Unsubscribed'",
            (ws,),
        ).fetchall()
        [(unsubscribed,)] = db.execute(
            "SELECT sum(unsubscribed) FROM (SELECT unsubscribed FROM message_stats_deltas "
            "WHERE workspace_id = %s UNION ALL SELECT unsubscribed FROM message_stats "
            "WHERE workspace_id = %s) s",
            (ws, ws),
        ).fetchall()
    assert properties["campaign_id"] == str(sent.campaign_id), "counted against its message"
    assert (properties["source"], unsubscribed) == ("mailto-unsubscribe", 1)


def test_reports_received_by_mail_are_classified_and_acted_on(database_url):
    ann, bob, cyd = "ann@example.org", "bob@example.org", "cyd@example.org"
    sent = support.sent_campaign(database_url, [ann, bob, cyd])
    ws = sent.workspace_id
    keep(database_url, ws,
         support.mail(support.dsn(sent, ann, status="5.1.1"), rcpt=sent.return_path(ann)),
         support.mail(support.arf(sent, bob, redacted=True), rcpt=f"fbl@bounces.{support.DOMAIN}"),
         support.mail(support.dsn(sent, cyd, status="4.4.7", action="delayed"),
                      rcpt=sent.return_path(cyd)))  # fmt: skip
    assert process(database_url, ws) == 3
    assert _suppressions(database_url, ws) == [("complaint", "marketing"), ("hard_bounce", "*")]
    assert _delivery(database_url, sent, ann)[0] == "BOUNCED"
    assert _delivery(database_url, sent, bob)[0] == "COMPLAINED"
    # A delay notice: the receiving side is still trying, the message stays sent.
    assert _delivery(database_url, sent, cyd)[0] == "SENT"


def test_bad_mail_is_stored_classified_as_far_as_it_goes_and_suppresses_nobody(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    ann, ws = "ann@example.org", sent.workspace_id
    rcpt = sent.return_path(ann)
    forged = rcpt.replace("b-", "b-x", 1)
    big = b"A" * (20 * 1024 * 1024)
    bad = [
        b'Content-Type: multipart/report; boundary="x"\r\n\r\n--x\r\nnot closed',
        b"Content-Type: text/plain; charset=no-such-charset\r\n\r\n\xff\xfe bounce 5.1.1 "
        + ann.encode(),
        b'Subject: with an attachment\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: application/octet-stream\r\n\r\n" + big + b"\r\n--b--\r\n",
        # A DSN for an address this workspace never sent to, through a return path it signed.
        support.dsn(sent, ann, status="5.1.1").replace(ann.encode(), b"stranger@example.net"),
        # A report with a forged VERP token wherever it appears, and a guessed Message-ID.
        support.dsn(sent, ann, status="5.1.1")
        .replace(rcpt.encode(), forged.encode())
        .replace(str(sent.deliveries[ann]).encode(), str(new_id()).encode()),
    ]
    rcpts = [rcpt, rcpt, rcpt, rcpt, forged]
    keep(database_url, ws, *(support.mail(raw, rcpt=r) for raw, r in zip(bad, rcpts, strict=True)))
    assert process(database_url, ws) == len(bad)
    assert [state for state, _, _ in _reports(database_url, ws)] == ["PROCESSED"] * len(bad)
    assert _suppressions(database_url, ws) == []
    assert _delivery(database_url, sent, ann)[0] == "SENT"


def test_a_bounce_naming_no_address_suppresses_only_the_address_the_message_went_to(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    ws = sent.workspace_id
    with factories.seeding(database_url) as db:
        factories.identity(db, ws, sent.profiles["ann@example.org"], "email", "zed@example.org")
        db.commit()
    keep(database_url, ws, event(kind="bounce", bounce_class="hard", status="5.1.1",
                                 return_path=sent.return_path("ann@example.org")))  # fmt: skip
    process(database_url, ws)
    with factories.seeding(database_url) as db:
        [(digest,)] = db.execute(
            "SELECT digest FROM suppressions WHERE workspace_id = %s", (ws,)
        ).fetchall()
    assert bytes(digest) == Keys(SECRET).identifier_digest(ws, "email", "ann@example.org")


def test_the_guard_counts_only_messages_that_were_sent(database_url):
    emails = [f"p{i}@example.org" for i in range(2)]
    sent = support.sent_campaign(database_url, emails, extra_sent=998)
    ws = sent.workspace_id
    with factories.seeding(database_url) as db:  # 60 the relay refused: bounced, never sent
        for _ in range(60):
            pid = factories.profile(db, ws)
            db.execute(
                "INSERT INTO deliveries (workspace_id, id, campaign_id, profile_id, status,"
                " due_at) VALUES (%s, %s, %s, %s, 'BOUNCED', now())",
                (ws, new_id(), sent.campaign_id, pid),
            )
        db.commit()
    keep(database_url, ws, event(kind="bounce", bounce_class="hard", recipients=(emails[0],),
                                 status="5.1.1", return_path=sent.return_path(emails[0])))  # fmt: skip
    process(database_url, ws)
    assert _campaign(database_url, sent) == ("SENDING", None)


def test_a_complaint_received_twice_is_one_event(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    ws, ann = sent.workspace_id, "ann@example.org"
    for _ in range(2):  # a sender that did not see our answer sends it again
        keep(database_url, ws, support.mail(support.arf(sent, ann),
                                            rcpt=f"fbl@bounces.{support.DOMAIN}"))  # fmt: skip
        process(database_url, ws)
    with factories.seeding(database_url) as db:
        [(events,)] = db.execute(
            "SELECT count(*) FROM events WHERE workspace_id = %s AND name = 'Email Complained'",
            (ws,),
        ).fetchall()
    assert events == 1
    assert _suppressions(database_url, ws) == [("complaint", "marketing")]


def test_a_backlog_of_soft_bounces_counts_the_days_they_were_received(database_url):
    sent = support.sent_campaign(database_url, ["ann@example.org"])
    ann, ws = "ann@example.org", sent.workspace_id
    start = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    report = event(kind="bounce", bounce_class="soft", recipients=(ann,), status="4.2.2",
                   return_path=sent.return_path(ann))  # fmt: skip
    keep(database_url, ws, *(replace(report, id=new_id(), external_id=str(new_id()),
                                     received_at=start + timedelta(days=d)) for d in (0, 3, 6)))  # fmt: skip
    assert process(database_url, ws, clock=FrozenClock(start + timedelta(days=7))) == 3
    assert _suppressions(database_url, ws) == [("soft_bounce", "*")]
    with factories.seeding(database_url) as db:
        outcomes = [r[0] for r in db.execute(
            "SELECT outcome FROM inbound_messages WHERE workspace_id = %s ORDER BY received_at",
            (ws,),
        ).fetchall()]  # fmt: skip
    assert ["address suppressed" in o for o in outcomes] == [False, False, True]


def test_the_guard_also_judges_campaigns_as_they_send(database_url):
    emails = [f"p{i}@example.org" for i in range(4)]
    sent = support.sent_campaign(database_url, emails, extra_sent=996)
    ws = sent.workspace_id
    with factories.seeding(database_url) as db:
        # Four complaints came while the first few hundred had gone out; more is still to send.
        db.execute(
            "UPDATE deliveries SET status = 'COMPLAINED' WHERE workspace_id = %s AND id = ANY(%s)",
            (ws, list(sent.deliveries.values())),
        )
        db.execute(
            "INSERT INTO deliveries (workspace_id, id, campaign_id, profile_id, status, due_at)"
            " VALUES (%s, %s, %s, %s, 'QUEUED', now() - interval '1 minute')",
            (ws, new_id(), sent.campaign_id, factories.profile(db, ws)),
        )
        db.commit()
    paused = as_worker(database_url, actors.run_reputation_sweep)
    assert sent.campaign_id in paused
    status, reason = _campaign(database_url, sent)
    assert status == "PAUSED"
    assert reason is not None
    assert reason.startswith("complaint rate 0.40%")
