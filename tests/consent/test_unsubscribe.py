"""RFC 8058 one-click unsubscribe, the preference centre, and the contact gate."""

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from itsdangerous import URLSafeSerializer

from consent.keys import PREFERENCES, UNSUBSCRIBE, Keys
from consent.links import preferences_token, unsubscribe_token
from consent.model import ConsentRecord, ConsentStatus, Suppression, SuppressionReason, decide
from tests.conftest import gql
from tests.consent.support import ok, profile_by_email, record_consent

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _email() -> str:
    return f"grace.{uuid.uuid4().hex[:10]}@example.com"


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _subscribed(client, workspace) -> tuple[str, str]:
    email = _email()
    ok(record_consent(client, workspace.api_token, email, "GRANTED"), "recordConsent")
    url = profile_by_email(
        client,
        workspace.api_token,
        email,
        'unsubscribeUrl(channel: "email", purpose: "newsletter")',
    )["unsubscribeUrl"]
    return email, _path(url)


def _gate(client, workspace, email: str, purpose: str = "newsletter") -> dict:
    return profile_by_email(
        client,
        workspace.api_token,
        email,
        f'contactable(channel: "email", purpose: "{purpose}") {{ allowed reason }}',
    )["contactable"]


def test_one_click_post_withdraws_and_the_gate_says_why(client, workspace):
    email, path = _subscribed(client, workspace)
    assert _gate(client, workspace, email)["allowed"] is True
    response = client.post(path, data=ONE_CLICK, follow_redirects=False)
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers
    consents = profile_by_email(client, workspace.api_token, email, "consents { status source }")
    assert consents["consents"] == [{"status": "WITHDRAWN", "source": "one-click-unsubscribe"}]
    gate = _gate(client, workspace, email)
    assert gate["allowed"] is False
    assert "unsubscribed" in gate["reason"]
    assert "one-click-unsubscribe" in gate["reason"]
    # Transactional mail is another purpose: still allowed.
    assert _gate(client, workspace, email, "transactional")["allowed"] is True


def test_an_oversized_form_is_refused_and_records_nothing(client, workspace):
    email, path = _subscribed(client, workspace)
    padded = {**ONE_CLICK, "padding": "x" * 5000}
    declared = client.post(path, data=padded)

    def chunks():  # no Content-Length: the cap must hold while the body streams
        yield b"List-Unsubscribe=One-Click&padding="
        for _ in range(10):
            yield b"x" * 1000

    streamed = client.post(
        path, content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    for response in (declared, streamed):
        assert response.status_code == 400
        assert "too large" in response.text
    assert _gate(client, workspace, email)["allowed"] is True


def test_get_shows_a_page_and_changes_nothing(client, workspace):
    email, path = _subscribed(client, workspace)
    page = client.get(path)
    assert page.status_code == 200
    assert "Unsubscribe" in page.text
    assert "newsletter" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert _gate(client, workspace, email)["allowed"] is True


def test_tampered_foreign_and_wrong_kind_tokens_are_refused(client, workspace, settings):
    email, path = _subscribed(client, workspace)
    token = path.rsplit("/", 1)[1]
    payload, signature = token.rsplit(".", 1)
    # The first character carries six whole bits of the signature (the last may be padding).
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    foreign = Keys("another server's secret " * 2).sign_forever(
        "cdp.unsubscribe",
        {"w": str(workspace.workspace.id), "p": str(uuid.uuid4()), "c": "email", "u": "newsletter"},
    )
    preferences = _path(
        profile_by_email(client, workspace.api_token, email, "preferenceCentreUrl")[
            "preferenceCentreUrl"
        ]
    ).rsplit("/", 1)[1]
    for bad in (f"{payload}.{flipped}", foreign, preferences, "garbage"):
        response = client.post(f"/unsubscribe/{bad}", data=ONE_CLICK)
        assert response.status_code == 400, bad
    assert client.post(path, data={"List-Unsubscribe": "Maybe"}).status_code == 400
    assert _gate(client, workspace, email)["allowed"] is True


def test_the_preference_centre_withdraws_and_grants_again(client, workspace):
    email, _ = _subscribed(client, workspace)
    path = _path(
        profile_by_email(client, workspace.api_token, email, "preferenceCentreUrl")[
            "preferenceCentreUrl"
        ]
    )
    page = client.get(path)
    assert page.status_code == 200
    assert "newsletter" in page.text
    form = {"purpose": "newsletter", "channel": "email"}
    assert client.post(path, data={**form, "action": "withdraw"}).status_code == 200
    assert _gate(client, workspace, email)["allowed"] is False
    assert client.post(path, data={**form, "action": "grant"}).status_code == 200
    gate = _gate(client, workspace, email)
    assert gate["allowed"] is True, gate
    assert client.post(path, data={**form, "action": "explode"}).status_code == 400


T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _record(status: ConsentStatus, at: datetime) -> ConsentRecord:
    return ConsentRecord(
        id=uuid.uuid4(),
        profile_id=uuid.uuid4(),
        purpose="newsletter",
        channel="email",
        status=status,
        lawful_basis="consent",
        source="form",
        notice_version=None,
        actor="test",
        recorded_at=at,
    )


def _suppressed(reason: SuppressionReason, channel="*", purpose="*") -> Suppression:
    return Suppression("email", channel, purpose, reason, "test", T0)


def _records(record: ConsentRecord | None) -> list[ConsentRecord]:
    return [] if record is None else [record]


def _decide(purpose: str, consent: ConsentRecord | None, suppressions, channel: str = "email"):
    return decide(
        channel=channel, purpose=purpose, records=_records(consent), suppressions=suppressions
    )


def test_the_gate_rules():
    granted = _record(ConsentStatus.GRANTED, T0 + timedelta(days=1))
    assert _decide("newsletter", None, []).allowed is False
    assert _decide("transactional", None, []).allowed
    assert _decide("newsletter", granted, []).allowed
    erased = _decide(
        "transactional",
        granted,
        [
            _suppressed(SuppressionReason.UNSUBSCRIBED, "email", "newsletter"),
            _suppressed(SuppressionReason.ERASED),
        ],
    )
    assert erased.allowed is False
    assert erased.reason.startswith("suppressed: erased")
    objected = [_suppressed(SuppressionReason.OBJECTED, purpose="marketing")]
    assert _decide("offers", None, objected, channel="sms").allowed is False
    assert _decide("transactional", None, objected, channel="sms").allowed
    # A later explicit grant overrides an unsubscribe, but not an objection.
    unsubscribed = [_suppressed(SuppressionReason.UNSUBSCRIBED, "email", "newsletter")]
    assert _decide("newsletter", granted, unsubscribed).allowed
    assert not _decide("newsletter", granted, objected).allowed
    earlier = _record(ConsentStatus.GRANTED, T0 - timedelta(days=1))
    assert not _decide("newsletter", earlier, unsubscribed).allowed


def test_the_preference_centre_offers_published_purposes_with_their_notice(client, workspace):
    email, _ = _subscribed(client, workspace)
    notice = f"Offers, at most weekly ({uuid.uuid4().hex[:6]})."
    published = gql(
        client,
        'mutation($t: String!) { publishConsentNotice(purpose: "offers", version: "v1", text: $t) '
        "{ errors { message } } }",
        {"t": notice},
        workspace.api_token,
    )
    assert published["data"]["publishConsentNotice"]["errors"] == []
    path = _path(
        profile_by_email(client, workspace.api_token, email, "preferenceCentreUrl")[
            "preferenceCentreUrl"
        ]
    )
    page = client.get(path)
    assert "offers" in page.text
    assert notice in page.text
    form = {"purpose": "offers", "channel": "email", "action": "grant"}
    assert client.post(path, data=form).status_code == 200
    consents = profile_by_email(
        client, workspace.api_token, email, "consents { purpose status source noticeVersion }"
    )["consents"]
    assert {
        "purpose": "offers",
        "status": "GRANTED",
        "source": "preference-centre",
        "noticeVersion": "v1",
    } in consents
    assert _gate(client, workspace, email, "offers")["allowed"] is True


def test_a_link_made_by_itsdangerous_before_it_was_made_uncompressed_still_works(
    client, workspace, settings
):
    """Mail already sent carries links whose payload zlib shortened: they keep working."""
    email, path = _subscribed(client, workspace)
    token = path.rsplit("/", 1)[1]
    payload = Keys(settings.secret()).verify(UNSUBSCRIBE, token)
    older = URLSafeSerializer(
        settings.secret(), salt=UNSUBSCRIBE, signer_kwargs={"digest_method": hashlib.sha256}
    ).dumps(payload)
    assert older.startswith("."), "the older token is the compressed kind"
    assert not token.startswith(".")
    response = client.post(path.replace(token, older), data=ONE_CLICK, follow_redirects=False)
    assert response.status_code == 200
    assert _gate(client, workspace, email)["allowed"] is False


def test_links_signed_with_the_kept_key_are_the_tokens_itsdangerous_signs():
    """The signer keeps its derived key between tokens: the tokens stay those of a new signer
    each time, and one salt's signer never signs another salt's token."""
    keys, workspace_id = Keys("a-secret-" + "x" * 40), uuid.uuid4()
    for profile_id in (uuid.uuid4(), uuid.uuid4()):
        for use, token in (
            (UNSUBSCRIBE, unsubscribe_token(keys, workspace_id, profile_id, channel="email",
                                            purpose="newsletter")),
            (PREFERENCES, preferences_token(keys, workspace_id, profile_id)),
        ):  # fmt: skip
            fresh = URLSafeSerializer(
                "a-secret-" + "x" * 40, salt=use, signer_kwargs={"digest_method": hashlib.sha256}
            )
            payload = fresh.loads(token)
            assert payload["p"] == str(profile_id)
            signer = fresh.make_signer()
            body = token.rsplit(".", 1)[0]
            assert token == signer.sign(body).decode()
