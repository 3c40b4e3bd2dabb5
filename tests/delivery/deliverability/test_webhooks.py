"""Relay webhooks: each provider's signed sample is read, and anything unproven is refused."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from delivery.deliverability.webhooks import (
    BadPayload,
    BadSignature,
    CachingCertificateSource,
    CertificateUnavailableError,
    HttpCertificateSource,
    ProviderEvent,
    UnknownProviderError,
    WebhookConfig,
    generic,
    verify_and_parse,
)
from delivery.deliverability.webhooks.model import enhanced_status

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"
VERP = "b-abcdefghijklmnopqrstuvwxyz-abcdefgh@bounces.example.com"


# --- Amazon SES through SNS --------------------------------------------------------------------


def _rsa_certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


SNS_KEY, SNS_CERT = _rsa_certificate()


class FakeCertificates:
    def __init__(self, certificates: dict[str, bytes] | None = None) -> None:
        self.certificates = {CERT_URL: SNS_CERT} if certificates is None else certificates
        self.fetched: list[str] = []

    async def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        if url not in self.certificates:
            raise OSError("connection refused")
        return self.certificates[url]


def _signed_sns(
    message: dict[str, Any], version: str = "2", key: rsa.RSAPrivateKey = SNS_KEY
) -> dict[str, Any]:
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    canonical = "".join(f"{name}\n{message[name]}\n" for name in names if name in message)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS version 1
    signature = key.sign(canonical.encode(), padding.PKCS1v15(), algorithm)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": CERT_URL,
    }


def _notification(ses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": json.dumps(ses),
        "Timestamp": "2024-05-06T11:59:58.000Z",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
        **extra,
    }


MAIL = {
    "timestamp": "2024-05-06T11:59:50.000Z",
    "messageId": "0102018f4d3e-ses-id",
    "source": VERP,
    "destination": ["gone@example.org", "full@example.org", "odd@example.org"],
    "headers": [
        {"name": "From", "value": "News <news@example.com>"},
        {"name": "Message-ID", "value": "<m-42@example.com>"},
    ],
    "commonHeaders": {"messageId": "<m-42@example.com>", "subject": "Hello"},
}

SES_BOUNCE = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Transient",
        "bounceSubType": "General",
        "feedbackId": "0102018f4d3e-feedback",
        "timestamp": "2024-05-06T11:59:55.000Z",
        "bouncedRecipients": [
            # Transient by SES's word, but the 5.x.x code makes it hard.
            {
                "emailAddress": "Gone@Example.org",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            },
            {
                "emailAddress": "full@example.org",
                "status": "4.2.2",
                "diagnosticCode": "smtp; 452 4.2.2 mailbox full",
            },
            {"emailAddress": "odd@example.org"},
        ],
    },
    "mail": MAIL,
}


def _ses_config(source: Any = None, topics: frozenset[str] | None = None) -> WebhookConfig:
    return WebhookConfig(
        certificate_source=FakeCertificates() if source is None else source, ses_topic_arns=topics
    )


async def _ses(envelope: dict[str, Any], config: WebhookConfig | None = None) -> Any:
    body = json.dumps(envelope).encode()
    headers = {"x-amz-sns-message-type": envelope.get("Type", "")}
    return await verify_and_parse("ses", headers, body, config=config or _ses_config(), now=NOW)


@pytest.mark.parametrize("version", ["1", "2"])
async def test_a_signed_ses_bounce_becomes_one_event_per_recipient(version: str) -> None:
    result = await _ses(_signed_sns(_notification(SES_BOUNCE), version))

    gone, full, odd = result.events
    assert (gone.kind, gone.bounce_class, gone.recipient, gone.status) == (
        "bounce",
        "hard",
        "gone@example.org",
        "5.1.1",
    )
    assert gone.diagnostic == "smtp; 550 5.1.1 user unknown"
    assert (full.bounce_class, full.status) == ("soft", "4.2.2")
    assert (odd.bounce_class, odd.status) == ("soft", None)
    assert {e.message_id for e in result.events} == {"<m-42@example.com>"}
    assert {e.return_path for e in result.events} == {VERP}
    assert gone.provider_message_id == "0102018f4d3e-ses-id"
    assert gone.at == datetime(2024, 5, 6, 11, 59, 55, tzinfo=UTC)
    assert len({e.provider_event_id for e in result.events}) == 3
    assert result.subscribe_url is None


async def test_ses_event_ids_are_stable_across_retries_and_a_permanent_bounce_is_hard() -> None:
    permanent = json.loads(json.dumps(SES_BOUNCE))
    permanent["bounce"]["bounceType"] = "Permanent"
    first = await _ses(_signed_sns(_notification(permanent)))
    again = await _ses(_signed_sns(_notification(permanent, MessageId="another-sns-id")))

    assert [e.provider_event_id for e in first.events] == [
        e.provider_event_id for e in again.events
    ]
    assert first.events[2].bounce_class == "hard"  # no status: SES's Permanent decides


async def test_ses_complaint_delivery_and_delay_are_read_from_either_type_field() -> None:
    complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "feedbackId": "c-1",
            "timestamp": "2024-05-06T11:59:00Z",
            "complaintFeedbackType": "abuse",
            "complainedRecipients": [{"emailAddress": "angry@example.org"}],
        },
        "mail": {**MAIL, "headers": []},
    }
    delivery = {
        "eventType": "Delivery",
        "delivery": {
            "timestamp": "2024-05-06T11:59:01Z",
            "recipients": ["happy@example.org"],
            "smtpResponse": "250 2.6.0 Message received",
        },
        "mail": MAIL,
    }
    delay = {
        "eventType": "DeliveryDelay",
        "deliveryDelay": {
            "timestamp": "2024-05-06T11:59:02Z",
            "delayType": "MailboxFull",
            "delayedRecipients": [
                {"emailAddress": "slow@example.org", "status": "4.2.2", "diagnosticCode": "452"}
            ],
        },
        "mail": MAIL,
    }

    (c,) = (await _ses(_signed_sns(_notification(complaint)))).events
    (d,) = (await _ses(_signed_sns(_notification(delivery)))).events
    (w,) = (await _ses(_signed_sns(_notification(delay)))).events

    assert (c.kind, c.bounce_class, c.recipient) == ("complaint", "complaint", "angry@example.org")
    assert c.message_id == "<m-42@example.com>"  # from commonHeaders when headers lack it
    assert (d.kind, d.bounce_class, d.status, d.diagnostic) == (
        "delivery",
        "none",
        None,
        "250 2.6.0 Message received",
    )
    assert (w.kind, w.bounce_class, w.status) == ("deferred", "soft", "4.2.2")


async def test_a_not_spam_report_and_other_ses_types_yield_nothing() -> None:
    not_spam = {
        "notificationType": "Complaint",
        "complaint": {
            "complaintFeedbackType": "not-spam",
            "complainedRecipients": [{"emailAddress": "a@example.org"}],
            "timestamp": "2024-05-06T11:59:00Z",
        },
        "mail": MAIL,
    }
    for ses in (
        not_spam,
        {"eventType": "Open", "mail": MAIL},
        {"notificationType": "AmazonSnsSubscriptionSucceeded"},
    ):
        assert (await _ses(_signed_sns(_notification(ses)))).events == ()


async def test_a_subscription_confirmation_returns_its_subscribe_url() -> None:
    url = f"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=abc"
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "abc",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": url,
        "Timestamp": "2024-05-06T11:00:00.000Z",
    }
    result = await _ses(_signed_sns(confirmation, "1"))
    assert result.subscribe_url == url
    assert result.events == ()

    elsewhere = _signed_sns({**confirmation, "SubscribeURL": "https://attacker.example/confirm"})
    with pytest.raises(BadPayload):
        await _ses(elsewhere)


async def test_a_tampered_sns_message_or_signature_is_refused() -> None:
    signed = _signed_sns(_notification(SES_BOUNCE))
    tampered = {**signed, "Message": signed["Message"].replace("gone@", "someone@")}
    with pytest.raises(BadSignature):
        await _ses(tampered)

    other_key, _ = _rsa_certificate()
    with pytest.raises(BadSignature):
        await _ses(_signed_sns(_notification(SES_BOUNCE), key=other_key))

    with pytest.raises(BadSignature):
        await _ses({**signed, "Signature": "not base64!"})
    with pytest.raises(BadSignature):
        await _ses({**signed, "Signature": "\u00e9t\u00e9"})
    with pytest.raises(BadSignature):
        await _ses({k: v for k, v in signed.items() if k != "Signature"})
    with pytest.raises(BadSignature):
        await _ses({**signed, "SignatureVersion": "3"})


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.eu-west-1.amazonaws.com.attacker.example/cert.pem",
        "https://attacker.example/sns.eu-west-1.amazonaws.com/cert.pem",
        "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.txt",
        "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://user@sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://s3.amazonaws.com/SimpleNotificationService-1.pem",
    ],
)
async def test_a_certificate_url_off_sns_is_refused_without_fetching(url: str) -> None:
    source = FakeCertificates({url: SNS_CERT})
    with pytest.raises(BadSignature):
        await _ses(
            {**_signed_sns(_notification(SES_BOUNCE)), "SigningCertURL": url}, _ses_config(source)
        )
    assert source.fetched == []


async def test_a_china_region_certificate_url_is_fetched() -> None:
    url = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem"
    source = FakeCertificates({url: SNS_CERT})
    result = await _ses(
        {**_signed_sns(_notification(SES_BOUNCE)), "SigningCertURL": url}, _ses_config(source)
    )
    assert len(result.events) == 3
    assert source.fetched == [url]


async def test_topics_outside_the_allow_list_are_refused_before_fetching() -> None:
    source = FakeCertificates()
    config = _ses_config(source, frozenset({"arn:aws:sns:eu-west-1:123456789012:other"}))
    with pytest.raises(BadSignature, match="TopicArn"):
        await _ses(_signed_sns(_notification(SES_BOUNCE)), config)
    assert source.fetched == []

    allowed = _ses_config(source, frozenset({TOPIC}))
    assert len((await _ses(_signed_sns(_notification(SES_BOUNCE)), allowed)).events) == 3


async def test_ses_without_a_certificate_source_refuses_and_an_unreachable_certificate_is_retryable() -> (
    None
):
    with pytest.raises(BadSignature, match="not configured"):
        await _ses(_signed_sns(_notification(SES_BOUNCE)), WebhookConfig())
    with pytest.raises(CertificateUnavailableError):
        await _ses(_signed_sns(_notification(SES_BOUNCE)), _ses_config(FakeCertificates({})))
    with pytest.raises(BadSignature):
        await _ses(
            _signed_sns(_notification(SES_BOUNCE)),
            _ses_config(FakeCertificates({CERT_URL: b"junk"})),
        )


async def test_certificates_are_cached_by_url() -> None:
    inner = FakeCertificates()
    config = _ses_config(CachingCertificateSource(inner))
    for _ in range(3):
        await _ses(_signed_sns(_notification(SES_BOUNCE)), config)
    assert inner.fetched == [CERT_URL]


async def test_the_http_certificate_source_fetches_with_httpx_and_does_not_follow_redirects() -> (
    None
):
    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("moved.pem"):
            return httpx.Response(302, headers={"Location": "https://attacker.example/cert.pem"})
        return httpx.Response(200, content=SNS_CERT)

    async with httpx.AsyncClient(transport=httpx.MockTransport(serve)) as client:
        config = _ses_config(HttpCertificateSource(client))
        assert len((await _ses(_signed_sns(_notification(SES_BOUNCE)), config)).events) == 3
        moved = CERT_URL.replace(".pem", "-moved.pem")
        with pytest.raises(CertificateUnavailableError):
            await _ses({**_signed_sns(_notification(SES_BOUNCE)), "SigningCertURL": moved}, config)


async def test_malformed_sns_bodies_are_bad_payloads() -> None:
    config = _ses_config()
    for body in (b"{not json", b"[1, 2]", json.dumps({"Type": "Surprise"}).encode()):
        with pytest.raises(BadPayload):
            await verify_and_parse("ses", {}, body, config=config, now=NOW)
    signed_junk = _signed_sns({**_notification({}), "Message": "not json"})
    with pytest.raises(BadPayload):
        await _ses(signed_junk)
    wrong_types = json.loads(json.dumps(SES_BOUNCE))
    wrong_types["bounce"]["bouncedRecipients"] = "gone@example.org"
    with pytest.raises(BadPayload):
        await _ses(_signed_sns(_notification(wrong_types)))


# --- SendGrid ----------------------------------------------------------------------------------

SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
SENDGRID_CONFIG = WebhookConfig(sendgrid_public_key=SENDGRID_PUBLIC)

SENDGRID_EVENTS = [
    {
        "email": "Gone@Example.org",
        "timestamp": 1714996790,
        "event": "bounce",
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 5.1.1 no such user",
        "smtp-id": "<m-1@example.com>",
        "sg_event_id": "ev-1",
        "sg_message_id": "sg-1.filter",
    },
    {
        "email": "blocked@example.org",
        "timestamp": 1714996791,
        "event": "bounce",
        "type": "blocked",
        "reason": "blocked by policy",
        "smtp-id": "<m-2@example.com>",
        "sg_event_id": "ev-2",
    },
    {
        "email": "late@example.org",
        "timestamp": 1714996792,
        "event": "deferred",
        "response": "451 4.7.1 try later",
        "attempt": "2",
        "smtp-id": "<m-3@example.com>",
        "sg_event_id": "ev-3",
    },
    {
        "email": "happy@example.org",
        "timestamp": 1714996793,
        "event": "delivered",
        "response": "250 OK",
        "smtp-id": "<m-4@example.com>",
        "sg_event_id": "ev-4",
    },
    {
        "email": "angry@example.org",
        "timestamp": 1714996794,
        "event": "spamreport",
        "sg_event_id": "ev-5",
    },
    {
        "email": "old@example.org",
        "timestamp": 1714996795,
        "event": "dropped",
        "reason": "Bounced Address",
        "smtp-id": "<m-6@example.com>",
    },
    {
        "email": "other@example.org",
        "timestamp": 1714996796,
        "event": "dropped",
        "reason": "Unsubscribed Address",
    },
    {"email": "happy@example.org", "timestamp": 1714996797, "event": "open", "sg_event_id": "ev-8"},
]


def _sendgrid_headers(body: bytes, timestamp: str = "1714996800") -> dict[str, str]:
    signature = SENDGRID_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


async def test_a_signed_sendgrid_batch_becomes_events() -> None:
    body = json.dumps(SENDGRID_EVENTS).encode()
    result = await verify_and_parse(
        "sendgrid", _sendgrid_headers(body), body, config=SENDGRID_CONFIG, now=NOW
    )

    bounce, blocked, deferred, delivered, spam, dropped = result.events
    assert (bounce.kind, bounce.bounce_class, bounce.recipient, bounce.status) == (
        "bounce",
        "hard",
        "gone@example.org",
        "5.1.1",
    )
    assert (bounce.message_id, bounce.provider_event_id, bounce.provider_message_id) == (
        "<m-1@example.com>",
        "ev-1",
        "sg-1.filter",
    )
    assert bounce.at == datetime.fromtimestamp(1714996790, UTC)
    assert (blocked.kind, blocked.bounce_class, blocked.status) == ("bounce", "soft", None)
    assert (deferred.kind, deferred.bounce_class, deferred.status, deferred.diagnostic) == (
        "deferred",
        "soft",
        "4.7.1",
        "451 4.7.1 try later",
    )
    assert (delivered.kind, delivered.bounce_class) == ("delivery", "none")
    assert (spam.kind, spam.bounce_class, spam.recipient) == (
        "complaint",
        "complaint",
        "angry@example.org",
    )
    assert (dropped.kind, dropped.bounce_class, dropped.diagnostic) == (
        "bounce",
        "hard",
        "dropped: Bounced Address",
    )
    assert dropped.provider_event_id.startswith("d-")  # SendGrid gave none: derived, and stable
    again = await verify_and_parse(
        "sendgrid", _sendgrid_headers(body), body, config=SENDGRID_CONFIG, now=NOW
    )
    assert again.events[5].provider_event_id == dropped.provider_event_id


async def test_a_blocked_sendgrid_bounce_with_a_permanent_code_is_hard() -> None:
    body = json.dumps([{**SENDGRID_EVENTS[1], "status": "5.7.1"}]).encode()
    (event,) = (
        await verify_and_parse(
            "sendgrid", _sendgrid_headers(body), body, config=SENDGRID_CONFIG, now=NOW
        )
    ).events
    assert event.bounce_class == "hard"


async def test_a_tampered_sendgrid_body_signature_or_timestamp_is_refused() -> None:
    body = json.dumps(SENDGRID_EVENTS).encode()
    headers = _sendgrid_headers(body)
    cases = [
        (headers, body.replace(b"Gone@", b"Else@")),
        ({**headers, "X-Twilio-Email-Event-Webhook-Timestamp": "1714996801"}, body),
        (
            {
                **headers,
                "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(
                    b"\x30\x06\x02\x01\x01\x02\x01\x01"
                ).decode(),
            },
            body,
        ),
        ({**headers, "X-Twilio-Email-Event-Webhook-Signature": "%%%"}, body),
        ({**headers, "X-Twilio-Email-Event-Webhook-Signature": "\u00e9t\u00e9"}, body),
        ({"X-Twilio-Email-Event-Webhook-Timestamp": "1714996800"}, body),
    ]
    for case_headers, case_body in cases:
        with pytest.raises(BadSignature):
            await verify_and_parse(
                "sendgrid", case_headers, case_body, config=SENDGRID_CONFIG, now=NOW
            )


async def test_sendgrid_unconfigured_refuses_and_malformed_signed_json_is_a_bad_payload() -> None:
    body = json.dumps(SENDGRID_EVENTS).encode()
    with pytest.raises(BadSignature, match="not configured"):
        await verify_and_parse(
            "sendgrid", _sendgrid_headers(body), body, config=WebhookConfig(), now=NOW
        )
    for bad in (
        b"[{",
        b'{"event": "bounce"}',
        b"[1]",
        json.dumps([{**SENDGRID_EVENTS[0], "timestamp": "soon"}]).encode(),
        json.dumps([{**SENDGRID_EVENTS[0], "email": ["x"]}]).encode(),
    ):
        with pytest.raises(BadPayload):
            await verify_and_parse(
                "sendgrid", _sendgrid_headers(bad), bad, config=SENDGRID_CONFIG, now=NOW
            )


def test_the_sendgrid_key_is_checked_when_configured_and_may_be_pem() -> None:
    with pytest.raises(ValueError, match="not a public key"):
        WebhookConfig(sendgrid_public_key="bm90IGEga2V5")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = rsa_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="P-256"):
        WebhookConfig(sendgrid_public_key=base64.b64encode(der).decode())
    pem = SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    WebhookConfig(sendgrid_public_key=pem.decode())
    assert "sendgrid_public_key" not in repr(SENDGRID_CONFIG)


# --- Postmark ----------------------------------------------------------------------------------

POSTMARK_CONFIG = WebhookConfig(
    postmark_username="postmark", postmark_password="s3cret-long-password"
)

POSTMARK_BOUNCE = {
    "RecordType": "Bounce",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    "Email": "Gone@Example.org",
    "From": "news@example.com",
    "BouncedAt": "2024-05-06T11:58:54.9070259Z",
    "Inactive": True,
    "Metadata": {"message_id": "<m-7@example.com>", "Return-Path": VERP},
    "MessageStream": "broadcast",
}


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def _postmark(
    record: dict[str, Any],
    headers: dict[str, str] | None = None,
    config: WebhookConfig = POSTMARK_CONFIG,
) -> tuple[ProviderEvent, ...]:
    body = json.dumps(record).encode()
    auth = _basic("postmark", "s3cret-long-password") if headers is None else headers
    return (await verify_and_parse("postmark", auth, body, config=config, now=NOW)).events


async def test_a_postmark_bounce_with_basic_auth_becomes_an_event() -> None:
    (event,) = await _postmark(POSTMARK_BOUNCE)
    assert (event.kind, event.bounce_class, event.recipient, event.status) == (
        "bounce",
        "hard",
        "gone@example.org",
        "5.1.1",
    )
    assert (event.message_id, event.return_path) == ("<m-7@example.com>", VERP)
    assert event.provider_event_id == "4323372036854775807"
    assert event.provider_message_id == "883953f4-6105-42a2-a16a-77a8eac79483"
    assert event.at == datetime(2024, 5, 6, 11, 58, 54, 907025, tzinfo=UTC)


async def test_postmark_types_map_to_classes_and_non_bounces_are_skipped() -> None:
    soft_with_hard_code = await _postmark({**POSTMARK_BOUNCE, "Type": "SoftBounce"})
    soft = await _postmark({**POSTMARK_BOUNCE, "Type": "SoftBounce", "Details": "mailbox full"})
    blocked = await _postmark({**POSTMARK_BOUNCE, "Type": "Blocked", "Details": "blocked"})
    by_code = await _postmark({**POSTMARK_BOUNCE, "Type": None, "TypeCode": 100000, "Details": ""})
    complaint = await _postmark(
        {
            **POSTMARK_BOUNCE,
            "RecordType": "SpamComplaint",
            "Type": "SpamComplaint",
            "TypeCode": 100001,
        }
    )

    assert soft_with_hard_code[0].bounce_class == "hard"
    assert (soft[0].bounce_class, soft[0].status) == ("soft", None)
    assert blocked[0].bounce_class == "soft"
    assert by_code[0].bounce_class == "hard"  # BadEmailAddress
    assert by_code[0].diagnostic == POSTMARK_BOUNCE["Description"]
    assert (complaint[0].kind, complaint[0].bounce_class) == ("complaint", "complaint")
    for skipped in (
        "AutoResponder",
        "AddressChange",
        "ChallengeVerification",
        "ManuallyDeactivated",
        "SomethingNew",
    ):
        assert await _postmark({**POSTMARK_BOUNCE, "Type": skipped}) == ()
    assert await _postmark({"RecordType": "Open", "Recipient": "a@example.org"}) == ()


async def test_a_postmark_delivery_gets_a_derived_stable_id() -> None:
    delivery = {
        "RecordType": "Delivery",
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "Recipient": "happy@example.org",
        "DeliveredAt": "2024-05-06T11:58:00-04:00",
        "Details": "smtp;250 2.0.0 OK",
        "Metadata": {},
    }
    (first,) = await _postmark(delivery)
    (second,) = await _postmark(delivery)
    assert (first.kind, first.bounce_class, first.recipient) == (
        "delivery",
        "none",
        "happy@example.org",
    )
    assert first.at == datetime(2024, 5, 6, 15, 58, tzinfo=UTC)
    assert first.provider_event_id == second.provider_event_id
    assert first.message_id is None


async def test_postmark_without_matching_credentials_is_refused() -> None:
    for headers in (
        _basic("postmark", "wrong"),
        _basic("someone", "s3cret-long-password"),
        {"Authorization": "Basic %%%"},
        {"Authorization": "Basic \u00e9t\u00e9"},
        {"Authorization": "Bearer token"},
        {"Authorization": "Basic " + base64.b64encode(b"postmarks3cret-long-password").decode()},
        {},
    ):
        with pytest.raises(BadSignature):
            await _postmark(POSTMARK_BOUNCE, headers)
    with pytest.raises(BadSignature, match="not configured"):
        await _postmark(POSTMARK_BOUNCE, config=WebhookConfig(postmark_username="postmark"))


async def test_malformed_postmark_json_is_a_bad_payload() -> None:
    for body in (
        b"nope",
        b"[]",
        json.dumps({**POSTMARK_BOUNCE, "BouncedAt": "yesterday"}).encode(),
        json.dumps({**POSTMARK_BOUNCE, "Email": 7}).encode(),
        json.dumps({**POSTMARK_BOUNCE, "Metadata": []}).encode(),
    ):
        with pytest.raises(BadPayload):
            await verify_and_parse(
                "postmark",
                _basic("postmark", "s3cret-long-password"),
                body,
                config=POSTMARK_CONFIG,
                now=NOW,
            )


# --- Generic JSON ------------------------------------------------------------------------------

SECRET = "generic-secret"
GENERIC_CONFIG = WebhookConfig(generic_secret=SECRET)
GENERIC_BODY = {
    "events": [
        {
            "type": "bounce",
            "recipient": "Gone@Example.org",
            "status": "5.1.1",
            "diagnostic": "550 5.1.1 unknown",
            "message_id": "m-9@example.com",
            "return_path": f"<{VERP}>",
            "at": "2024-05-06T11:59:00Z",
            "id": "r-1",
        },
        {
            "type": "bounce",
            "recipient": "maybe@example.org",
            "at": "2024-05-06T11:59:01Z",
            "id": "r-2",
        },
        {
            "type": "bounce",
            "recipient": "sure@example.org",
            "class": "hard",
            "at": "2024-05-06T11:59:02Z",
            "id": "r-3",
        },
        {
            "type": "complaint",
            "recipient": "angry@example.org",
            "at": "2024-05-06T11:59:03Z",
            "id": "r-4",
        },
        {
            "type": "delivery",
            "recipient": "happy@example.org",
            "at": "2024-05-06T11:59:04+02:00",
            "id": "r-5",
        },
        {
            "type": "deferred",
            "recipient": "late@example.org",
            "status": "4.4.1",
            "at": "2024-05-06T11:59:05Z",
            "id": "r-6",
        },
    ]
}


def _generic_headers(body: bytes, at: datetime = NOW, secret: str = SECRET) -> dict[str, str]:
    return {"X-CDP-Signature": generic.sign(secret, body, at)}


async def test_a_signed_generic_batch_becomes_events() -> None:
    body = json.dumps(GENERIC_BODY).encode()
    result = await verify_and_parse(
        "generic", _generic_headers(body), body, config=GENERIC_CONFIG, now=NOW
    )

    hard, unknown, declared, complaint, delivery, deferred = result.events
    assert (hard.kind, hard.bounce_class, hard.recipient, hard.status) == (
        "bounce",
        "hard",
        "gone@example.org",
        "5.1.1",
    )
    assert (hard.message_id, hard.return_path, hard.provider_event_id) == (
        "<m-9@example.com>",
        VERP,
        "r-1",
    )
    assert unknown.bounce_class == "soft"
    assert declared.bounce_class == "hard"
    assert complaint.bounce_class == "complaint"
    assert (delivery.bounce_class, delivery.at) == (
        "none",
        datetime(2024, 5, 6, 9, 59, 4, tzinfo=UTC),
    )
    assert (deferred.kind, deferred.bounce_class) == ("deferred", "soft")


async def test_the_generic_signature_matches_the_documented_recipe() -> None:
    body = b'{"events": []}'
    t = int(NOW.timestamp())
    mac = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert generic.sign(SECRET, body, NOW) == f"t={t},v1={mac}"
    rotating = {"x-cdp-signature": f"t={t},v1={'0' * 64},v1={mac}"}
    assert (
        await verify_and_parse("generic", rotating, body, config=GENERIC_CONFIG, now=NOW)
    ).events == ()


async def test_an_old_future_tampered_or_missing_generic_signature_is_refused() -> None:
    body = json.dumps(GENERIC_BODY).encode()
    cases = [
        (_generic_headers(body, NOW - timedelta(minutes=6)), body),
        (_generic_headers(body, NOW + timedelta(minutes=6)), body),
        (_generic_headers(body, secret="other"), body),
        (_generic_headers(body), body.replace(b"Gone@", b"Else@")),
        ({"X-CDP-Signature": "v1=abc"}, body),
        ({"X-CDP-Signature": "t=12x,v1=abc"}, body),
        ({"X-CDP-Signature": f"t={int(NOW.timestamp())},v1=\u00e9"}, body),
        ({}, body),
    ]
    for headers, case_body in cases:
        with pytest.raises(BadSignature):
            await verify_and_parse("generic", headers, case_body, config=GENERIC_CONFIG, now=NOW)
    fresh_enough = _generic_headers(body, NOW - timedelta(minutes=4))
    assert (
        len(
            (
                await verify_and_parse(
                    "generic", fresh_enough, body, config=GENERIC_CONFIG, now=NOW
                )
            ).events
        )
        == 6
    )


async def test_generic_unconfigured_refuses_and_malformed_signed_json_is_a_bad_payload() -> None:
    body = json.dumps(GENERIC_BODY).encode()
    with pytest.raises(BadSignature, match="not configured"):
        await verify_and_parse(
            "generic", _generic_headers(body), body, config=WebhookConfig(), now=NOW
        )
    event = GENERIC_BODY["events"][0]
    for bad in (
        b"{",
        b"[]",
        b"{}",
        json.dumps({"events": [{**event, "type": "open"}]}).encode(),
        json.dumps({"events": [{**event, "class": "medium"}]}).encode(),
        json.dumps({"events": [{**event, "recipient": "nobody"}]}).encode(),
        json.dumps({"events": [{k: v for k, v in event.items() if k != "id"}]}).encode(),
        json.dumps({"events": [{**event, "at": 5}]}).encode(),
        b'{"events": [' * 5000,
    ):
        with pytest.raises(BadPayload):
            await verify_and_parse(
                "generic", _generic_headers(bad), bad, config=GENERIC_CONFIG, now=NOW
            )


# --- Shared ------------------------------------------------------------------------------------


async def test_an_unknown_provider_is_its_own_error() -> None:
    with pytest.raises(UnknownProviderError):
        await verify_and_parse("mailchimp", {}, b"{}", config=WebhookConfig(), now=NOW)


@pytest.mark.parametrize(
    ("status", "diagnostic", "expected"),
    [
        ("5.1.1", None, "5.1.1"),
        (" 4.2.2 ", None, "4.2.2"),
        (None, "smtp; 550 5.1.1 user unknown", "5.1.1"),
        (None, "550-5.7.1 [1.2.3.4] blocked", "5.7.1"),
        (None, "550 #5.1.0 Address rejected", "5.1.0"),
        (None, "450 5.1.1 mismatched classes", None),
        (None, "version 2.0.1 of the filter said no", None),
        ("bounce", "421 try later", None),
    ],
)
def test_enhanced_status_codes_are_read_from_fields_or_reply_text(
    status: str | None, diagnostic: str | None, expected: str | None
) -> None:
    assert enhanced_status(status, diagnostic) == expected
