"""Postmark bounce, spam complaint and delivery webhooks, behind HTTP Basic auth.

Postmark does not sign webhooks. It sends the credentials written in the
webhook URL (https://user:password@host/webhooks/postmark) as HTTP Basic
auth, so those are the proof of origin: both the username and the password
are compared in constant time, and both always, so that the time taken says
nothing about which was wrong. Use a long random password and HTTPS.

Postmark's HardBounce and BadEmailAddress are hard; SoftBounce, Transient,
DnsError, Blocked, DMARCPolicy, SpamNotification (delivered but refused as
spam), VirusNotification and Unknown are soft; a bounce record of type
SpamComplaint is a complaint. Auto-replies, challenge requests, address
changes, subscribe and unsubscribe requests, and Postmark's own
deactivations are not bounces and are skipped, as is any type not named
here. An enhanced status code in the details overrides all of that.
Postmark's MessageID is its own id; our Message-ID and return path are read
from the message's Headers, or from its Metadata under `message_id` and
`return_path`, when the message carried them.
"""

import base64
import hmac
from collections.abc import Mapping
from datetime import datetime

from delivery.deliverability.webhooks import fields
from delivery.deliverability.webhooks.config import WebhookConfig
from delivery.deliverability.webhooks.model import (
    BadSignature,
    Kind,
    ProviderClass,
    ProviderEvent,
    WebhookResult,
    derived_id,
    event,
)

PROVIDER = "postmark"
_BOUNCE_TYPES: dict[str, tuple[Kind, ProviderClass]] = {
    "HardBounce": ("bounce", "hard"),
    "BadEmailAddress": ("bounce", "hard"),
    "SoftBounce": ("bounce", "soft"),
    "Transient": ("bounce", "soft"),
    "DnsError": ("bounce", "soft"),
    "Blocked": ("bounce", "soft"),
    "DMARCPolicy": ("bounce", "soft"),
    "SpamNotification": ("bounce", "soft"),
    "VirusNotification": ("bounce", "soft"),
    "Unknown": ("bounce", "soft"),
    "SpamComplaint": ("complaint", "soft"),
}
_TYPE_CODES = {
    1: "HardBounce",
    2: "Transient",
    256: "DnsError",
    512: "SpamNotification",
    2048: "Unknown",
    4096: "SoftBounce",
    8192: "VirusNotification",
    100000: "BadEmailAddress",
    100001: "SpamComplaint",
    100006: "Blocked",
    100009: "DMARCPolicy",
}


async def receive(
    headers: Mapping[str, str], body: bytes, config: WebhookConfig, now: datetime
) -> WebhookResult:
    verify(headers, config)
    found = parse(body)
    return WebhookResult(events=() if found is None else (found,))


def verify(headers: Mapping[str, str], config: WebhookConfig) -> None:
    """Raise BadSignature unless the Basic credentials match; `headers` has lower-case names."""
    if not config.postmark_username or not config.postmark_password:
        raise BadSignature("postmark webhooks are not configured")
    scheme, _, encoded = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        raise BadSignature("missing Basic credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except ValueError:  # binascii.Error, or text that is not ASCII
        raise BadSignature("malformed Basic credentials") from None
    username, colon, password = decoded.partition(b":")
    user_ok = hmac.compare_digest(username, config.postmark_username.encode())
    password_ok = hmac.compare_digest(password, config.postmark_password.encode())
    if not (colon and user_ok & password_ok):
        raise BadSignature("credentials do not match")


def parse(body: bytes) -> ProviderEvent | None:
    where = "body"
    data = fields.obj(fields.load(body), where)
    record = fields.opt_text(data, "RecordType", where)
    if record == "Delivery":
        return _delivery(data, where)
    if record not in ("Bounce", "SpamComplaint"):
        return None
    bounce_type = fields.opt_text(data, "Type", where) or _TYPE_CODES.get(_code(data), "")
    known = _BOUNCE_TYPES.get(bounce_type)
    if known is None:
        return None
    kind, provider_class = known
    recipient = fields.text(data, "Email", where)
    at_text = fields.text(data, "BouncedAt", where)
    postmark_id = fields.id_text(data, "MessageID", where)
    return event(
        provider=PROVIDER,
        kind=kind,
        recipient=recipient,
        event_id=fields.id_text(data, "ID", where)
        or derived_id(PROVIDER, kind, recipient.lower(), at_text, postmark_id or ""),
        at=fields.iso_time(at_text, f"{where}.BouncedAt"),
        where=where,
        provider_class=provider_class,
        diagnostic=fields.opt_text(data, "Details", where)
        or fields.opt_text(data, "Description", where),
        message_id=_ours(data, "Message-ID", "message_id"),
        return_path=_ours(data, "Return-Path", "return_path"),
        provider_message_id=postmark_id,
    )


def _delivery(data: fields.JsonObject, where: str) -> ProviderEvent:
    recipient = fields.text(data, "Recipient", where)
    at_text = fields.text(data, "DeliveredAt", where)
    postmark_id = fields.id_text(data, "MessageID", where)
    return event(
        provider=PROVIDER,
        kind="delivery",
        recipient=recipient,
        event_id=derived_id(PROVIDER, "delivery", recipient.lower(), at_text, postmark_id or ""),
        at=fields.iso_time(at_text, f"{where}.DeliveredAt"),
        where=where,
        diagnostic=fields.opt_text(data, "Details", where),
        message_id=_ours(data, "Message-ID", "message_id"),
        return_path=_ours(data, "Return-Path", "return_path"),
        provider_message_id=postmark_id,
    )


def _code(data: fields.JsonObject) -> int:
    code = data.get("TypeCode")
    return code if isinstance(code, int) and not isinstance(code, bool) else -1


def _ours(data: fields.JsonObject, header: str, metadata_key: str) -> str | None:
    """Our own header, from the message's Headers or Metadata, when the record carries it."""
    found = fields.header_value(data.get("Headers"), header, "body.Headers")
    if found is not None:
        return found
    metadata = fields.opt_obj(data, "Metadata", "body")
    for key, value in metadata.items():
        if key.lower().replace("-", "_") == metadata_key and isinstance(value, str):
            return value
    return None
