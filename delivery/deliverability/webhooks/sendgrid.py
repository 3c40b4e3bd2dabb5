"""SendGrid's signed Event Webhook: ECDSA P-256 over the timestamp header and the raw body.

The signature header holds a base64 DER ECDSA signature, made with SHA-256
over the value of the timestamp header followed by the body's bytes, and is
checked against the verification key SendGrid shows (base64 DER). SendGrid
posts a JSON list of events; only delivery outcomes become events. A bounce
is hard, and a blocked one soft, unless its enhanced status code says
otherwise; a deferral is always soft. A "dropped" event is kept only when
SendGrid dropped the message because the address bounced or complained
before, since those are facts about the address. SendGrid documents no
freshness window for its timestamp, so none is enforced: `sg_event_id`
makes a replayed event a duplicate.
"""

import base64
from collections.abc import Mapping
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from delivery.deliverability.webhooks import fields
from delivery.deliverability.webhooks.config import WebhookConfig, sendgrid_key
from delivery.deliverability.webhooks.model import (
    BadPayload,
    BadSignature,
    Kind,
    ProviderClass,
    ProviderEvent,
    WebhookResult,
    derived_id,
    event,
)

PROVIDER = "sendgrid"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
# SendGrid event: (our kind, the class its type implies, the field that holds the reply text)
_EVENTS: dict[str, tuple[Kind, ProviderClass, str]] = {
    "bounce": ("bounce", "hard", "reason"),
    "blocked": ("bounce", "soft", "reason"),
    "deferred": ("deferred", "soft", "response"),
    "delivered": ("delivery", "soft", "response"),
    "spamreport": ("complaint", "soft", "reason"),
}
_DROPPED: dict[str, tuple[Kind, ProviderClass, str]] = {
    "bounced address": ("bounce", "hard", "reason"),
    "spam reporting address": ("complaint", "soft", "reason"),
}


async def receive(
    headers: Mapping[str, str], body: bytes, config: WebhookConfig, now: datetime
) -> WebhookResult:
    verify(headers, body, config)
    return WebhookResult(events=tuple(parse(body)))


def verify(headers: Mapping[str, str], body: bytes, config: WebhookConfig) -> None:
    """Raise BadSignature unless SendGrid signed this body; `headers` has lower-case names."""
    if config.sendgrid_public_key is None:
        raise BadSignature("sendgrid webhooks are not configured")
    signature_text = headers.get(SIGNATURE_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not signature_text or not timestamp:
        raise BadSignature("missing SendGrid signature headers")
    try:
        signature = base64.b64decode(signature_text, validate=True)
    except ValueError:  # binascii.Error, or text that is not ASCII
        raise BadSignature("malformed signature") from None
    key = sendgrid_key(config.sendgrid_public_key)
    try:
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadSignature("signature does not match") from None


def parse(body: bytes) -> list[ProviderEvent]:
    events: list[ProviderEvent] = []
    for index, item in enumerate(fields.array(fields.load(body), "body")):
        where = f"body[{index}]"
        found = _event(fields.obj(item, where), where)
        if found is not None:
            events.append(found)
    return events


def _event(data: fields.JsonObject, where: str) -> ProviderEvent | None:
    name = fields.opt_text(data, "event", where) or ""
    if name not in _EVENTS and name != "dropped":
        return None  # opens, clicks, processed and the like say nothing about delivery
    reason = fields.opt_text(data, "reason", where) or ""
    known = _DROPPED.get(reason.lower()) if name == "dropped" else _EVENTS[name]
    if known is None:
        return None
    kind, provider_class, text_field = known
    if name == "bounce" and fields.opt_text(data, "type", where) == "blocked":
        provider_class = "soft"
    diagnostic = fields.opt_text(data, text_field, where) or reason or None
    if name == "dropped":
        diagnostic = f"dropped: {reason}"
    if "timestamp" not in data:
        raise BadPayload(f"{where}.timestamp: required")
    recipient = fields.text(data, "email", where)
    sg_message_id = fields.opt_text(data, "sg_message_id", where)
    smtp_id = fields.opt_text(data, "smtp-id", where)
    event_id = fields.opt_text(data, "sg_event_id", where) or derived_id(
        PROVIDER, name, recipient.lower(), str(data["timestamp"]), sg_message_id or smtp_id or ""
    )
    return event(
        provider=PROVIDER,
        kind=kind,
        recipient=recipient,
        event_id=event_id,
        at=fields.unix_time(data["timestamp"], f"{where}.timestamp"),
        where=where,
        provider_class=provider_class,
        status=fields.opt_text(data, "status", where),
        diagnostic=diagnostic,
        message_id=smtp_id,
        provider_message_id=sg_message_id,
    )
