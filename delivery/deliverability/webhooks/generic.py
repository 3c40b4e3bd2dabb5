"""Our own webhook format, for relays that have none we read: signed JSON events.

The body is `{"events": [...]}` and the header `X-CDP-Signature` is
`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`. A request is
refused when no v1 matches, or when t is more than five minutes from now, so
a captured request cannot be replayed later (and within those minutes the
event ids make a replay harmless). Several v1 values may be sent
while a secret is rotated; one match is enough. The format is strict: an
unknown event type or a field of the wrong type refuses the whole request.
A bounce's class comes from its enhanced status code, else from its optional
"class" ("hard" or "soft"), else it is soft.
"""

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import get_args

from delivery.deliverability.webhooks import fields
from delivery.deliverability.webhooks.config import WebhookConfig
from delivery.deliverability.webhooks.model import (
    BadPayload,
    BadSignature,
    Kind,
    ProviderClass,
    ProviderEvent,
    WebhookResult,
    event,
)

PROVIDER = "generic"
SIGNATURE_HEADER = "x-cdp-signature"
TOLERANCE = timedelta(minutes=5)
_MAX_TIME_DIGITS = 12
_KINDS: dict[str, Kind] = {kind: kind for kind in get_args(Kind)}


def sign(secret: str, body: bytes, at: datetime) -> str:
    """The X-CDP-Signature value for `body` sent at `at`, as a relay computes it."""
    t = str(int(at.timestamp()))
    return f"t={t},v1={_mac(secret, t, body)}"


async def receive(
    headers: Mapping[str, str], body: bytes, config: WebhookConfig, now: datetime
) -> WebhookResult:
    verify(headers, body, config, now)
    return WebhookResult(events=tuple(parse(body)))


def verify(headers: Mapping[str, str], body: bytes, config: WebhookConfig, now: datetime) -> None:
    """Raise BadSignature unless the signature matches and is fresh; headers are lower-case."""
    if not config.generic_secret:
        raise BadSignature("generic webhooks are not configured")
    t, macs = _parse_header(headers.get(SIGNATURE_HEADER, ""))
    if abs(now.timestamp() - int(t)) > TOLERANCE.total_seconds():
        raise BadSignature("signature timestamp is too far from now")
    expected = _mac(config.generic_secret, t, body).encode()
    # Every candidate is compared, so the time taken does not depend on which one matched.
    matched = [hmac.compare_digest(expected, mac.lower().encode()) for mac in macs]
    if not any(matched):
        raise BadSignature("signature does not match")


def parse(body: bytes) -> list[ProviderEvent]:
    data = fields.obj(fields.load(body), "body")
    items = fields.array(data.get("events"), "body.events")
    return [
        _event(fields.obj(item, f"events[{i}]"), f"events[{i}]") for i, item in enumerate(items)
    ]


def _event(data: fields.JsonObject, where: str) -> ProviderEvent:
    kind = _KINDS.get(fields.text(data, "type", where))
    if kind is None:
        raise BadPayload(f"{where}.type: expected bounce, complaint, delivery or deferred")
    bounce_class = fields.opt_text(data, "class", where) or "soft"
    if bounce_class not in ("hard", "soft"):
        raise BadPayload(f"{where}.class: expected hard or soft")
    provider_class: ProviderClass = "hard" if bounce_class == "hard" else "soft"
    return event(
        provider=PROVIDER,
        kind=kind,
        recipient=fields.text(data, "recipient", where),
        event_id=fields.text(data, "id", where),
        at=fields.iso_time(fields.text(data, "at", where), f"{where}.at"),
        where=where,
        provider_class=provider_class,
        status=fields.opt_text(data, "status", where),
        diagnostic=fields.opt_text(data, "diagnostic", where),
        message_id=fields.opt_text(data, "message_id", where),
        return_path=fields.opt_text(data, "return_path", where),
    )


def _parse_header(value: str) -> tuple[str, list[str]]:
    t = ""
    macs: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t":
            t = item
        elif key == "v1" and item:
            macs.append(item)
    if not (t.isascii() and t.isdigit() and len(t) <= _MAX_TIME_DIGITS) or not macs:
        raise BadSignature("missing or malformed X-CDP-Signature")
    return t, macs


def _mac(secret: str, t: str, body: bytes) -> str:
    return hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
