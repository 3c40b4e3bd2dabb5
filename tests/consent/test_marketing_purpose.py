"""`marketing` as a consent purpose: it stands for every non-transactional purpose
that has no record of its own on the channel; a purpose's own record wins, except
over a more recent `marketing` withdrawal."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from consent import gate
from consent.keys import Keys
from consent.model import (
    ConsentRecord,
    ConsentStatus,
    Contactability,
    Suppression,
    SuppressionReason,
    decide,
)
from domain import subjects
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.conftest import gql
from tests.consent.support import ok, profile_by_email, record_consent
from tests.support.database import APP_ROLE, SECRET

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _email() -> str:
    return f"mae.{uuid.uuid4().hex[:10]}@example.com"


def _record(client, workspace, email: str, purpose: str, status: str, **extra) -> dict:
    payload = ok(
        record_consent(client, workspace.api_token, email, status, purpose=purpose, **extra),
        "recordConsent",
    )
    consent: dict = payload["consent"]
    return consent


def _gate(client, workspace, email: str, purpose: str, channel: str = "email") -> dict:
    gate_answer: dict = profile_by_email(
        client,
        workspace.api_token,
        email,
        f'contactable(channel: "{channel}", purpose: "{purpose}") {{ allowed reason }}',
    )["contactable"]
    return gate_answer


def test_marketing_is_recorded_through_graphql_with_a_notice(client, workspace):
    email = _email()
    published = gql(
        client,
        'mutation { publishConsentNotice(purpose: "marketing", version: "v1", '
        'text: "News and offers by email.") { purpose version errors { field message } } }',
        token=workspace.api_token,
    )
    assert ok(published, "publishConsentNotice") == {
        "purpose": "marketing",
        "version": "v1",
        "errors": [],
    }
    consent = _record(client, workspace, email, " Marketing ", "GRANTED", noticeVersion="v1")
    assert (consent["purpose"], consent["status"], consent["noticeVersion"]) == (
        "marketing",
        "GRANTED",
        "v1",
    )
    consents = profile_by_email(
        client, workspace.api_token, email, "consents { purpose channel status }"
    )["consents"]
    assert consents == [{"purpose": "marketing", "channel": "email", "status": "GRANTED"}]


def test_names_other_than_marketing_are_still_checked(client, workspace):
    for purpose in ("*", "Market ing", ""):
        body = record_consent(client, workspace.api_token, _email(), "GRANTED", purpose=purpose)
        errors = body["data"]["recordConsent"]["errors"]
        assert [e["field"] for e in errors] == ["purpose"], (purpose, errors)


def test_a_marketing_grant_allows_a_purpose_with_no_record_of_its_own(client, workspace):
    email = _email()
    _record(client, workspace, email, "marketing", "GRANTED")
    newsletter = _gate(client, workspace, email, "newsletter")
    assert newsletter == {
        "allowed": True,
        "reason": "consent granted (marketing, source: signup-form)",
    }
    assert _gate(client, workspace, email, "marketing")["allowed"] is True
    # The grant was for email only.
    assert _gate(client, workspace, email, "newsletter", channel="sms") == {
        "allowed": False,
        "reason": "no consent recorded",
    }
    # consentAt answers for the exact purpose only.
    body = profile_by_email(
        client,
        workspace.api_token,
        email,
        'news: consentAt(purpose: "newsletter", channel: "email", at: "2100-01-01T00:00:00Z") '
        "{ status } "
        'general: consentAt(purpose: "marketing", channel: "email", at: "2100-01-01T00:00:00Z") '
        "{ purpose status }",
    )
    assert body == {"news": None, "general": {"purpose": "marketing", "status": "GRANTED"}}


def test_a_purpose_withdrawal_refuses_that_purpose_and_not_marketing(client, workspace):
    email = _email()
    _record(client, workspace, email, "marketing", "GRANTED")
    _record(client, workspace, email, "newsletter", "WITHDRAWN", source="settings-page")
    newsletter = _gate(client, workspace, email, "newsletter")
    assert newsletter == {
        "allowed": False,
        "reason": "suppressed: unsubscribed (source: settings-page)",
    }
    assert _gate(client, workspace, email, "marketing") == {
        "allowed": True,
        "reason": "consent granted (marketing, source: signup-form)",
    }
    assert _gate(client, workspace, email, "offers")["allowed"] is True


def test_a_marketing_withdrawal_refuses_purposes_without_their_own_grant(client, workspace):
    email = _email()
    _record(client, workspace, email, "marketing", "GRANTED")
    _record(client, workspace, email, "marketing", "WITHDRAWN", source="settings-page")
    for purpose in ("newsletter", "offers", "marketing"):
        answer = _gate(client, workspace, email, purpose)
        assert answer["allowed"] is False, (purpose, answer)
    # A later grant of the purpose itself wins over the marketing withdrawal.
    _record(client, workspace, email, "newsletter", "GRANTED", source="newsletter-form")
    assert _gate(client, workspace, email, "newsletter") == {
        "allowed": True,
        "reason": "consent granted (newsletter, source: newsletter-form)",
    }
    assert _gate(client, workspace, email, "offers")["allowed"] is False
    assert _gate(client, workspace, email, "marketing")["allowed"] is False


def test_a_later_marketing_withdrawal_wins_over_an_earlier_own_grant(client, workspace):
    email = _email()
    _record(client, workspace, email, "newsletter", "GRANTED", source="newsletter-form")
    _record(client, workspace, email, "marketing", "WITHDRAWN", source="settings-page")
    for purpose in ("newsletter", "offers"):
        assert _gate(client, workspace, email, purpose) == {
            "allowed": False,
            "reason": "suppressed: unsubscribed (source: settings-page)",
        }, purpose


def test_a_marketing_grant_again_lifts_only_the_marketing_withdrawal(client, workspace):
    email = _email()
    _record(client, workspace, email, "marketing", "WITHDRAWN")
    _record(client, workspace, email, "newsletter", "WITHDRAWN", source="settings-page")
    _record(client, workspace, email, "marketing", "GRANTED", source="win-back")
    assert _gate(client, workspace, email, "offers") == {
        "allowed": True,
        "reason": "consent granted (marketing, source: win-back)",
    }
    assert _gate(client, workspace, email, "newsletter") == {
        "allowed": False,
        "reason": "suppressed: unsubscribed (source: settings-page)",
    }


def test_the_one_click_link_for_marketing_withdraws_marketing(client, workspace):
    email = _email()
    _record(client, workspace, email, "marketing", "GRANTED")
    url = profile_by_email(
        client, workspace.api_token, email, 'unsubscribeUrl(channel: "email", purpose: "marketing")'
    )["unsubscribeUrl"]
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    assert "marketing" in client.get(path).text
    assert client.post(path, data=ONE_CLICK).status_code == 200
    consents = profile_by_email(client, workspace.api_token, email, "consents { purpose status }")
    assert consents["consents"] == [{"purpose": "marketing", "status": "WITHDRAWN"}]
    assert _gate(client, workspace, email, "newsletter") == {
        "allowed": False,
        "reason": "suppressed: unsubscribed (source: one-click-unsubscribe)",
    }
    assert _gate(client, workspace, email, "transactional")["allowed"] is True


def test_transactional_mail_ignores_marketing_records(client, workspace):
    withdrawn, granted = _email(), _email()
    _record(client, workspace, withdrawn, "marketing", "WITHDRAWN")
    _record(client, workspace, granted, "marketing", "GRANTED")
    _record(client, workspace, granted, "transactional", "DENIED", source="support-call")
    assert _gate(client, workspace, withdrawn, "transactional") == {
        "allowed": True,
        "reason": "transactional",
    }
    assert _gate(client, workspace, granted, "transactional") == {
        "allowed": False,
        "reason": "suppressed: unsubscribed (source: support-call)",
    }


PAGE = """query { profiles(first: 50) { edges { node {
  identities { value }
  contactable(channel: "email", purpose: "newsletter") { allowed reason }
} } } }"""


def test_a_page_of_profiles_follows_the_rule_per_profile(client, workspace):
    people = {state: _email() for state in ("general", "own", "refused", "withdrawn", "none")}
    _record(client, workspace, people["general"], "marketing", "GRANTED")
    _record(client, workspace, people["own"], "marketing", "WITHDRAWN")
    _record(client, workspace, people["own"], "newsletter", "GRANTED", source="newsletter-form")
    _record(client, workspace, people["refused"], "marketing", "DENIED", source="signup-form-2")
    _record(client, workspace, people["withdrawn"], "marketing", "GRANTED")
    _record(client, workspace, people["withdrawn"], "newsletter", "WITHDRAWN", source="settings")
    _record(client, workspace, people["none"], "offers", "GRANTED")
    body = gql(client, PAGE, token=workspace.api_token)
    assert "errors" not in body, body
    by_email = {
        e["node"]["identities"][0]["value"]: e["node"]["contactable"]
        for e in body["data"]["profiles"]["edges"]
    }
    assert {state: by_email[email] for state, email in people.items()} == {
        "general": {"allowed": True, "reason": "consent granted (marketing, source: signup-form)"},
        "own": {"allowed": True, "reason": "consent granted (newsletter, source: newsletter-form)"},
        "refused": {"allowed": False, "reason": "suppressed: unsubscribed (source: signup-form-2)"},
        "withdrawn": {"allowed": False, "reason": "suppressed: unsubscribed (source: settings)"},
        "none": {"allowed": False, "reason": "no consent recorded"},
    }


async def _gate_at(
    database_url: str, workspace_id: uuid.UUID, email: str, moments: dict[str, datetime | None]
) -> dict[str, tuple[Contactability, Contactability]]:
    """The gate for newsletter and offers on email at each moment, through `consent.gate`."""
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=workspace_id) as uow:
            found = await subjects.directory().find(uow, "email", email)
            assert found is not None
            subject = Keys(SECRET).hashed(found)
            return {
                name: (
                    await gate.is_contactable(
                        uow, subject, channel="email", purpose="newsletter", at=at
                    ),
                    await gate.is_contactable(
                        uow, subject, channel="email", purpose="offers", at=at
                    ),
                )
                for name, at in moments.items()
            }
    finally:
        await engine.dispose()


def test_the_gate_as_of_a_date_follows_the_same_rule(client, workspace, database_url):
    email = _email()
    times = [
        datetime.fromisoformat(_record(client, workspace, email, purpose, status)["recordedAt"])
        for purpose, status in (
            ("marketing", "GRANTED"),
            ("marketing", "WITHDRAWN"),
            ("newsletter", "GRANTED"),
        )
    ]
    assert times == sorted(times)
    granted, withdrawn, own = times
    moments = {
        "before": granted - timedelta(days=1),
        "marketing granted": granted + (withdrawn - granted) / 2,
        "marketing withdrawn": withdrawn + (own - withdrawn) / 2,
        "own grant": None,
    }
    answers = asyncio.run(_gate_at(database_url, workspace.workspace.id, email, moments))
    seen = {
        name: ((news.allowed, news.reason), offers.allowed)
        for name, (news, offers) in answers.items()
    }
    assert seen == {
        "before": ((False, "no consent recorded"), False),
        "marketing granted": ((True, "consent granted (marketing, source: signup-form)"), True),
        "marketing withdrawn": ((False, "suppressed: unsubscribed (source: signup-form)"), False),
        "own grant": ((True, "consent granted (newsletter, source: signup-form)"), False),
    }


T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _consent(
    purpose: str, status: ConsentStatus, days: int, channel: str = "email"
) -> ConsentRecord:
    return ConsentRecord(
        id=uuid.uuid4(),
        profile_id=uuid.uuid4(),
        purpose=purpose,
        channel=channel,
        status=status,
        lawful_basis="consent",
        source=f"{purpose}-{status.value.lower()}",
        notice_version=None,
        actor="test",
        recorded_at=T0 + timedelta(days=days),
    )


def _unsubscribed(purpose: str, days: int) -> Suppression:
    return Suppression(
        "email",
        "email",
        purpose,
        SuppressionReason.UNSUBSCRIBED,
        "entry",
        T0 + timedelta(days=days),
    )


def _answer(purpose: str, records: list[ConsentRecord], suppressions=()) -> tuple[bool, str | None]:
    found = decide(channel="email", purpose=purpose, records=records, suppressions=suppressions)
    return found.allowed, found.reason


def test_the_rule_without_the_database():
    granted = _consent("marketing", ConsentStatus.GRANTED, 0)
    withdrawn = _consent("marketing", ConsentStatus.WITHDRAWN, 2)
    own_granted = _consent("newsletter", ConsentStatus.GRANTED, 1)
    own_withdrawn = _consent("newsletter", ConsentStatus.WITHDRAWN, 1)
    assert _answer("newsletter", [granted]) == (
        True,
        "consent granted (marketing, source: marketing-granted)",
    )
    assert _answer("newsletter", [granted, own_withdrawn]) == (
        False,
        "consent withdrawn (newsletter, source: newsletter-withdrawn)",
    )
    assert _answer("marketing", [granted, own_withdrawn])[0] is True
    assert _answer("newsletter", [withdrawn]) == (
        False,
        "consent withdrawn (marketing, source: marketing-withdrawn)",
    )
    # A marketing withdrawal overrides the purposes granted before it, not after.
    assert _answer("newsletter", [withdrawn, own_granted]) == (
        False,
        "consent withdrawn (marketing, source: marketing-withdrawn)",
    )
    own_granted_later = _consent("newsletter", ConsentStatus.GRANTED, 3)
    assert _answer("newsletter", [withdrawn, own_granted_later])[0] is True
    assert _answer("transactional", [withdrawn]) == (True, "transactional")
    assert (
        _answer("transactional", [granted, _consent("transactional", ConsentStatus.DENIED, 1)])[0]
        is False
    )
    # Another channel's marketing record says nothing about email.
    assert _answer("newsletter", [_consent("marketing", ConsentStatus.GRANTED, 0, "sms")]) == (
        False,
        "no consent recorded",
    )
    # The marketing withdrawal's unsubscribe entry gives way to a later own grant and to a
    # later marketing grant; a purpose's own unsubscribe does not give way to marketing.
    entry = [_unsubscribed("marketing", 2)]
    assert _answer("newsletter", [withdrawn, own_granted], entry)[0] is False
    assert _answer("newsletter", [withdrawn, own_granted_later], entry)[0] is True
    assert _answer("offers", [withdrawn, own_granted], entry)[0] is False
    assert _answer("offers", [_consent("marketing", ConsentStatus.GRANTED, 3)], entry)[0] is True
    assert _answer("marketing", [_consent("marketing", ConsentStatus.GRANTED, 3)], entry)[0] is True
    assert (
        _answer("marketing", [_consent("marketing", ConsentStatus.GRANTED, 1)], entry)[0] is False
    )
    # With an own record, the marketing entry says nothing: the own record decides, and names itself.
    assert _answer("newsletter", [withdrawn, own_withdrawn], entry) == (
        False,
        "consent withdrawn (newsletter, source: newsletter-withdrawn)",
    )
    own_entry = [_unsubscribed("newsletter", 1)]
    assert _answer("newsletter", [_consent("marketing", ConsentStatus.GRANTED, 3)], own_entry) == (
        False,
        "suppressed: unsubscribed (source: entry)",
    )
    # Other suppressions scoped marketing still cover every non-transactional purpose.
    objected = [Suppression("email", "*", "marketing", SuppressionReason.OBJECTED, "objection", T0)]
    assert (
        _answer("newsletter", [_consent("newsletter", ConsentStatus.GRANTED, 3)], objected)[0]
        is False
    )
    assert _answer("transactional", [], objected)[0] is True
