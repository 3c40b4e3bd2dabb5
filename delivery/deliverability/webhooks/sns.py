"""Amazon SNS message envelopes over HTTP: the signature check and the SubscribeURL.

A message is trusted only when its signature verifies against the
certificate at its SigningCertURL, and that URL is refused before any fetch
unless it is https, on a host `sns.<region>.amazonaws.com` (or `.com.cn`),
with a path ending `.pem`. SignatureVersion 1 is SHA1withRSA and 2 is
SHA256withRSA, over the documented fields of the message type, each as
"name\\nvalue\\n" in the documented order. Only Notification,
SubscriptionConfirmation and UnsubscribeConfirmation can be verified, so any
other type is refused. With a topic allow-list, other topics are refused too.
"""

import base64
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from delivery.deliverability.webhooks import fields
from delivery.deliverability.webhooks.certificates import CertificateSource
from delivery.deliverability.webhooks.model import (
    BadPayload,
    BadSignature,
    CertificateUnavailableError,
)

_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED_FIELDS["UnsubscribeConfirmation"] = _SIGNED_FIELDS["SubscriptionConfirmation"]
# SHA1 only because SNS still signs version 1 with it; subscriptions can ask for version 2.
_HASHES: dict[str, type[hashes.SHA1 | hashes.SHA256]] = {"1": hashes.SHA1, "2": hashes.SHA256}


@dataclass(frozen=True, slots=True)
class SnsMessage:
    type: str
    message_id: str
    topic_arn: str
    message: str
    timestamp: str
    subscribe_url: str | None


def is_sns_url(url: str) -> bool:
    """Whether a URL is https on an SNS endpoint host, the only place we fetch from."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and port in (None, 443)
        and parts.username is None
        and parts.password is None
        and _HOST.fullmatch(parts.hostname or "") is not None
    )


def is_certificate_url(url: str) -> bool:
    return is_sns_url(url) and urlsplit(url).path.endswith(".pem")


def string_to_sign(data: fields.JsonObject) -> bytes:
    kind = fields.text(data, "Type", "message")
    names = _SIGNED_FIELDS.get(kind)
    if names is None:
        raise BadPayload(f"unknown SNS message type {kind[:40]!r}")
    lines: list[str] = []
    for name in names:
        value = data.get(name)
        if value is None and name == "Subject":
            continue
        if not isinstance(value, str):
            raise BadPayload(f"message.{name}: expected a string")
        lines += (name, value)
    return ("\n".join(lines) + "\n").encode()


async def verify(
    body: bytes, source: CertificateSource | None, topics: frozenset[str] | None
) -> SnsMessage:
    """The verified SNS message in `body`; refusals raise a `WebhookError` subclass."""
    if source is None:
        raise BadSignature("ses webhooks are not configured")
    data = fields.obj(fields.load(body), "body")
    signed = string_to_sign(data)
    version = fields.opt_text(data, "SignatureVersion", "message")
    algorithm = _HASHES.get(version or "")
    if algorithm is None:
        raise BadSignature("unsupported SignatureVersion")
    cert_url = fields.opt_text(data, "SigningCertURL", "message")
    if cert_url is None or not is_certificate_url(cert_url):
        raise BadSignature("SigningCertURL is not an Amazon SNS certificate URL")
    topic = fields.text(data, "TopicArn", "message")
    if topics is not None and topic not in topics:
        raise BadSignature("TopicArn is not allowed")
    try:
        signature = base64.b64decode(fields.text(data, "Signature", "message"), validate=True)
    except (ValueError, BadPayload):  # binascii.Error is a ValueError
        raise BadSignature("missing or malformed Signature") from None
    public_key = _public_key(await _fetch(source, cert_url))
    try:
        public_key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise BadSignature("signature does not match") from None
    subscribe_url = fields.opt_text(data, "SubscribeURL", "message")
    if subscribe_url is not None and not is_sns_url(subscribe_url):
        raise BadPayload("SubscribeURL is not an Amazon SNS URL")
    return SnsMessage(
        type=fields.text(data, "Type", "message"),
        message_id=fields.text(data, "MessageId", "message"),
        topic_arn=topic,
        message=fields.text(data, "Message", "message"),
        timestamp=fields.text(data, "Timestamp", "message"),
        subscribe_url=subscribe_url,
    )


async def _fetch(source: CertificateSource, url: str) -> bytes:
    try:
        return await source.fetch(url)
    except Exception as error:  # any transport failure means "try again later"
        raise CertificateUnavailableError(
            "the SNS signing certificate could not be fetched"
        ) from error


def _public_key(pem: bytes) -> rsa.RSAPublicKey:
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        raise BadSignature("SigningCertURL does not hold a certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadSignature("the SNS certificate does not hold an RSA key")
    return key
