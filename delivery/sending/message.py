"""A campaign or journey message as it goes on the wire: headers, MIME parts, DKIM, return path.

Every message carries the headers mailbox providers ask of bulk senders:
`Message-ID`, `List-Unsubscribe` (the signed one-click URL and a mailto),
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), a
`Feedback-ID`, and DKIM signatures of the sending domain that cover both
list headers. The envelope sender is a VERP address on the domain's bounce
host that names the delivery, so a bounce finds its delivery without
parsing the bounce's text.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from delivery.sending import mime
from delivery.sending.dkim import Signer
from delivery.templates.model import RenderedEmail

BOUNCE_LABEL = "bounces"
_VERP_PREFIX = "b-"
_MAC_BYTES = 5
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Envelope:
    """What the relay gets: who the message is from (the return path) and to, and its bytes."""

    sender: str
    recipient: str
    data: bytes
    message_id: str


def _mac(secret: str, raw: bytes) -> bytes:
    return hmac.new(secret.encode(), b"verp:" + raw, hashlib.sha256).digest()[:_MAC_BYTES]


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def return_path(secret: str, delivery_id: UUID, domain: str) -> str:
    """The VERP envelope sender of a delivery: `b-<id>-<mac>@bounces.<domain>`."""
    raw = delivery_id.bytes
    return f"{_VERP_PREFIX}{_b32(raw)}-{_b32(_mac(secret, raw))}@{BOUNCE_LABEL}.{domain}"


def delivery_of(secret: str, address: str) -> UUID | None:
    """The delivery a bounce address names, or None when it is not one of ours or was forged."""
    local = address.strip().strip("<>").partition("@")[0].lower()
    if not local.startswith(_VERP_PREFIX):
        return None
    body, _, mac = local[len(_VERP_PREFIX) :].partition("-")
    try:
        raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
        given = base64.b32decode(mac.upper() + "=" * (-len(mac) % 8))
    except ValueError:
        return None
    if len(raw) != 16 or not hmac.compare_digest(given, _mac(secret, raw)):  # noqa: PLR2004 - a UUID
        return None
    return UUID(bytes=raw)


def date_header(at: datetime) -> str:
    """RFC 5322's date in UTC, as `email.utils.format_datetime` writes it, at a tenth of its cost."""
    u = at.astimezone(UTC)
    return (f"{_DAYS[u.weekday()]}, {u.day:02d} {_MONTHS[u.month - 1]} {u.year:04d} "
            f"{u.hour:02d}:{u.minute:02d}:{u.second:02d} +0000")  # fmt: skip


def message_id(delivery_id: UUID, domain: str) -> str:
    return f"<{delivery_id}@{domain}>"


@dataclass(frozen=True)
class Addressing:
    from_email: str
    to: str
    from_name: str | None = None
    reply_to: str | None = None


def build(
    email: RenderedEmail,
    addressing: Addressing,
    *,
    delivery_id: UUID,
    domain: str,
    unsubscribe_url: str,
    feedback_id: str,
    at: datetime,
    secret: str,
    signers: list[Signer],
) -> Envelope:
    """The signed message of one delivery, ready for SMTP."""
    identifier = message_id(delivery_id, domain)
    bounce = return_path(secret, delivery_id, domain)
    mailto = f"mailto:{bounce}?subject=unsubscribe"
    headers = [
        ("From", mime.mailbox(addressing.from_email, addressing.from_name)),
        ("To", addressing.to),
    ]
    if addressing.reply_to:
        headers.append(("Reply-To", addressing.reply_to))
    headers += [
        ("Subject", mime.text_value(email.subject)),
        ("Date", date_header(at)),
        ("Message-ID", identifier),
        ("List-Unsubscribe", f"<{unsubscribe_url}>, <{mailto}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("Feedback-ID", mime.text_value(feedback_id)),
    ]
    data = mime.compose(headers, email.text, email.html)
    for signer in signers:
        data = signer.sign(data, now=at.timestamp())
    return Envelope(bounce, addressing.to, data, identifier)
