"""`classify` on real bounces, complaints and auto-replies, and on small reports built here."""

import json
import os
from pathlib import Path

import pytest

from delivery.deliverability.reports import Report, classify

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = Path(os.environ.get("CDP_MAIL_FIXTURES") or ROOT.parent / "shared" / "fixtures" / "mail")
MANIFEST_KEYS = ("kind", "class", "recipients", "status")

# Entries marked DOUBTFUL in the manifest that we answer differently: file -> (our answer, why).
# Today we agree with every one of them; a difference must be added here with its reason.
DIFFERENT_FROM_MANIFEST: dict[str, tuple[dict[str, object], str]] = {}


def _entries() -> list[dict[str, object]]:
    path = FIXTURES / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else []


ENTRIES = _entries()


def _need_fixtures() -> None:
    if ENTRIES:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the mail fixtures are missing: no manifest.json in {FIXTURES}")
    pytest.skip(f"no mail fixtures in {FIXTURES} (set CDP_MAIL_FIXTURES)")


@pytest.mark.parametrize(
    "entry", ENTRIES or [None], ids=lambda e: str(e["file"]) if e else "fixtures-missing"
)
def test_each_fixture_is_classified_as_the_manifest_says(entry):
    _need_fixtures()
    report = classify((FIXTURES / entry["file"]).read_bytes())
    expected = {key: entry[key] for key in MANIFEST_KEYS}
    if entry["file"] in DIFFERENT_FROM_MANIFEST:
        expected = DIFFERENT_FROM_MANIFEST[entry["file"]][0]
    assert report.manifest_fields() == expected
    assert not [d for d in report.defects if d.startswith("internal error")]
    if "statuses" in entry:
        assert list(report.statuses) == entry["statuses"]
    if "feedback_type" in entry:
        assert report.feedback_type == entry["feedback_type"]
    if entry.get("action") in {"delayed", "failed"}:
        assert report.delayed == (entry["action"] == "delayed")


def test_differences_from_the_manifest_are_only_for_doubtful_entries():
    _need_fixtures()
    doubtful = {e["file"] for e in ENTRIES if "DOUBTFUL" in str(e.get("notes", ""))}
    assert set(DIFFERENT_FROM_MANIFEST) <= doubtful
    assert all(why.strip() for _, why in DIFFERENT_FROM_MANIFEST.values())


def _message(text: str) -> bytes:
    return text.lstrip("\n").replace("\n", "\r\n").encode()


VERP = "b-aaaabbbbccccdddd-eeee@bounces.shop.example"
ORIGINAL_ID = "<0b8e1f3c-5d4a-4c2e-9f10-2a6b7c8d9e01@shop.example>"

DSN_WITH_HEADERS = _message(f"""
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: {VERP}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

I could not deliver your message.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
X-Postfix-Sender: rfc822; {VERP}
Original-Envelope-Id: delivery-42

Final-Recipient: rfc822; Ann@Example.ORG
Original-Recipient: rfc822; ann.alias@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <ann@example.org>: Recipient address rejected

Final-Recipient: rfc822; bob@example.org
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full

--b1
Content-Type: text/rfc822-headers

Return-Path: <{VERP}>
Received: from out.shop.example (out.shop.example [192.0.2.7])
\tby mx.example.net (Postfix) with ESMTPS id 1234
\t(envelope-from <{VERP}>); Mon, 1 Jun 2026 10:00:00 +0000
From: Shop <news@shop.example>
To: ann@example.org
Subject: Summer sale
Message-ID: {ORIGINAL_ID}

--b1--
""")


def test_a_dsn_with_rfc822_headers_names_the_original_and_each_recipient():
    report = classify(DSN_WITH_HEADERS)
    assert report.manifest_fields() == {
        "kind": "dsn", "class": "hard",
        "recipients": ["ann@example.org", "bob@example.org"], "status": "5.1.1",
    }  # fmt: skip
    assert report.statuses == ("5.1.1", "4.2.2")
    assert [f.bounce_class for f in report.failures] == ["hard", "soft"]
    assert [f.delayed for f in report.failures] == [False, True]
    assert report.delayed is False  # one recipient failed outright
    assert (
        report.failures[0].diagnostic
        == "smtp; 550 5.1.1 <ann@example.org>: Recipient address rejected"
    )
    assert report.original_message_id == ORIGINAL_ID
    assert report.original_return_paths == (VERP,)
    assert report.original_recipient == "ann.alias@example.org"
    assert report.original_envelope_id == "delivery-42"
    assert report.defects == ()


def _arf(feedback_fields: str, *, attached_to: str = "carol@example.com") -> bytes:
    return _message(f"""
From: Feedback Loop <fbl@isp.example>
To: fbl@shop.example
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="f1"

--f1
Content-Type: text/plain

This is an email abuse report.

--f1
Content-Type: message/feedback-report

{feedback_fields.strip()}

--f1
Content-Type: message/rfc822

Return-Path: <{VERP}>
From: Shop <news@shop.example>
To: {attached_to}
Subject: Summer sale
Message-ID: {ORIGINAL_ID}

Hello.

--f1--
""")


def test_an_arf_abuse_report_names_the_complaint_and_the_original():
    report = classify(
        _arf(f"""
Feedback-Type: abuse
User-Agent: SomeFBL/1.0
Version: 1
Original-Mail-From: <{VERP}>
Original-Rcpt-To: <Dave@Example.com>
""")
    )
    assert report.manifest_fields() == {
        "kind": "arf", "class": "complaint", "recipients": ["dave@example.com"], "status": None,
    }  # fmt: skip
    assert report.feedback_type == "abuse"
    assert report.original_message_id == ORIGINAL_ID
    assert report.original_return_paths == (VERP,)
    assert report.original_recipient == "dave@example.com"


def test_an_arf_report_without_original_rcpt_to_uses_the_attached_to():
    report = classify(
        _arf("Feedback-Type: fraud\nVersion: 1", attached_to='"Carol" <carol@example.com>')
    )
    assert (report.bounce_class, report.recipients) == ("complaint", ("carol@example.com",))


@pytest.mark.parametrize("feedback_type", ["auth-failure", "not-spam", "virus", "other"])
def test_feedback_that_is_not_a_complaint_names_no_recipient(feedback_type):
    report = classify(_arf(f"Feedback-Type: {feedback_type}\nOriginal-Rcpt-To: erin@example.com"))
    assert (report.kind, report.bounce_class, report.recipients) == ("arf", "none", ())
    assert report.feedback_type == feedback_type
    assert report.original_recipient == "erin@example.com"


def test_a_feedback_report_without_a_type_is_taken_as_a_complaint():
    report = classify(_arf("Version: 1\nOriginal-Rcpt-To: erin@example.com"))
    assert (report.bounce_class, report.recipients) == ("complaint", ("erin@example.com",))
    assert "feedback report without a Feedback-Type" in report.defects


def _dsn(recipient_fields: str) -> bytes:
    return _message(f"""
From: MAILER-DAEMON@mx.example.net
To: {VERP}
Subject: Delivery Status Notification
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="d"

--d
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; fred@example.org
{recipient_fields.strip()}

--d--
""")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("Action: delayed\nStatus: 5.1.1", ("hard", ("fred@example.org",), "5.1.1")),
        ("Action: failed\nStatus: 4.2.2", ("soft", ("fred@example.org",), "4.2.2")),
        ("Action: delivered\nStatus: 2.0.0", ("none", (), "2.0.0")),
        ("Action: relayed\nStatus: 2.0.0", ("none", (), "2.0.0")),
        (
            "Action: failed\nDiagnostic-Code: smtp; 550 no such user",
            ("hard", ("fred@example.org",), None),
        ),
        (
            "Action: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 5.1.1 unknown",
            ("hard", ("fred@example.org",), "5.1.1"),
        ),
        (
            "Action: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 421 4.4.2 timeout",
            ("hard", ("fred@example.org",), "5.0.0"),
        ),
    ],
)
def test_the_code_decides_the_class_whatever_the_action_says(fields, expected):
    report = classify(_dsn(fields))
    assert (report.bounce_class, report.recipients, report.status) == expected


def test_a_global_dsn_with_a_utf8_address_is_read_like_any_dsn():
    raw = """
From: MAILER-DAEMON@mx.example.net
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=global-delivery-status; boundary="g"

--g
Content-Type: message/global-delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: utf-8; jörg@bücher.example
Action: failed
Status: 5.1.1

--g
Content-Type: message/global-headers

Return-Path: <{verp}>
Message-ID: {message_id}

--g--
"""
    report = classify(raw.format(verp=VERP, message_id=ORIGINAL_ID).lstrip().encode())
    assert (report.kind, report.bounce_class, report.recipients, report.status) == (
        "dsn", "hard", ("jörg@bücher.example",), "5.1.1",
    )  # fmt: skip
    assert (report.original_message_id, report.original_return_paths) == (ORIGINAL_ID, (VERP,))


def _text_bounce(body: str, *, subject: str = "Undeliverable mail") -> bytes:
    return _message(f"""
From: Mail Administrator <postmaster@mail.example.net>
To: {VERP}
Subject: {subject}
Content-Type: text/plain; charset=us-ascii

{body.strip()}
""")


def test_a_text_bounce_that_only_flufl_bounce_reads_is_read_by_it():
    report = classify(
        _text_bounce("Unable to deliver mail.\n\nUser's mailbox is full: <grace@example.org>\n")
    )
    assert report.manifest_fields() == {
        "kind": "dsn", "class": "soft", "recipients": ["grace@example.org"], "status": None,
    }  # fmt: skip
    assert "recipients found by flufl.bounce" in report.defects


def test_what_flufl_bounce_finds_is_dropped_when_it_is_the_sender():
    # flufl.bounce answers news@shop.example here: the first address after its trigger phrase.
    report = classify(
        _text_bounce(
            "A message that you sent could not be delivered to all of its recipients.\n"
            "It was sent by news@shop.example to grace@example.org, whose server said\n"
            "that the mailbox is full.\n"
            "---\n"
        )
    )
    assert (report.kind, report.bounce_class, report.recipients) == ("dsn", "soft", ())


def test_a_text_bounce_with_an_enhanced_code_takes_its_class_from_it():
    report = classify(
        _text_bounce(
            "Your message could not be delivered to the following address:\n\n"
            "  heidi@example.org\n"
            "    host mx.example.org said: 552 5.2.2 mailbox full\n"
        )
    )
    assert (report.bounce_class, report.recipients, report.status) == (
        "hard", ("heidi@example.org",), "5.2.2",
    )  # fmt: skip


def test_a_text_bounce_without_a_code_or_a_reason_is_soft():
    report = classify(
        _text_bounce("Your message could not be delivered to:\n\n  ivan@example.org\n")
    )
    assert (report.kind, report.bounce_class, report.recipients) == (
        "dsn", "soft", ("ivan@example.org",),
    )  # fmt: skip


def test_a_person_who_writes_undeliverable_sends_no_bounce():
    raw = _message("""
From: Liz <liz@example.com>
To: news@shop.example
Subject: Re: Undeliverable parcel?
Content-Type: text/plain

My parcel was undeliverable, the courier says. What now?
""")
    assert classify(raw).kind == "other"


def test_a_forwarded_bounce_is_not_a_bounce():
    forwarded = (
        _message("""
From: Judy <judy@example.com>
To: support@shop.example
Subject: Fwd: this bounced
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="x"

--x
Content-Type: text/plain

See the attached bounce.

--x
Content-Type: message/rfc822

""")
        + DSN_WITH_HEADERS
        + b"\r\n--x--\r\n"
    )
    assert classify(forwarded).manifest_fields()["kind"] == "other"


def _plain(headers: str) -> bytes:
    return _message(f"""
From: Kim <kim@example.com>
To: news@shop.example
Subject: Re: Summer sale
{headers.strip()}

Thanks!
""")


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ("Auto-Submitted: auto-replied (vacation)", "autoreply"),
        ("Auto-Submitted: auto-generated", "other"),
        ("X-Autoreply: yes", "autoreply"),
        ("X-Autorespond: on", "autoreply"),
        ("Precedence: auto_reply", "autoreply"),
        ("Precedence: bulk", "other"),
        ("Precedence: junk\nIn-Reply-To: <1@shop.example>\nReturn-Path: <>", "autoreply"),
        ("Auto-Submitted: auto-replied\nX-Apple-Unsubscribe: true", "other"),
    ],
)
def test_auto_replies_are_told_from_their_headers(headers, kind):
    report = classify(_plain(headers))
    assert (report.kind, report.bounce_class, report.recipients) == (kind, "none", ())


def test_an_auto_reply_names_the_message_it_answers():
    report = classify(_plain("Auto-Submitted: auto-replied\nIn-Reply-To: " + ORIGINAL_ID))
    assert report.original_message_id == ORIGINAL_ID


def test_the_report_is_frozen():
    report = Report()
    with pytest.raises(AttributeError):
        report.kind = "dsn"  # type: ignore[misc]
