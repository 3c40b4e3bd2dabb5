"""The common shape of relay reports: one `ProviderEvent` per recipient, and the errors.

Every provider's report becomes the same event, so what follows (suppression,
delivery status) never looks at a provider's format. The class of a bounce
follows the enhanced status code (RFC 3463) when there is one: 5.x.x is hard
and 4.x.x is soft, whatever the provider's own type says; without a code the
provider's type decides. A deferral is always soft, since the relay is still
trying and reports the final failure as a bounce of its own. Recipients are
lower-cased and Message-IDs carry their angle brackets, so both compare
as plain strings.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Literal

Kind = Literal["bounce", "complaint", "delivery", "deferred"]
BounceClass = Literal["hard", "soft", "complaint", "none"]
ProviderClass = Literal["hard", "soft"]

_STATUS = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})\s*")
# An SMTP reply code followed by its enhanced code, as in "550 5.1.1" or "550-5.1.1";
# the two must agree on the class, which keeps version numbers and dates out.
_REPLY_STATUS = re.compile(r"(?<![\d.])([245])\d\d[ -]#?(([245])\.\d{1,3}\.\d{1,3})(?![\d.])")


class WebhookError(Exception):
    """A refused webhook request; `reason` is short and safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadSignature(WebhookError):  # noqa: N818 - named for the answer the route gives (401)
    """The request is not proven to come from the provider (HTTP 401); nothing changes."""


class BadPayload(WebhookError):  # noqa: N818 - named for the answer the route gives (400)
    """The request is signed but its content is not what the provider documents (HTTP 400)."""


class UnknownProviderError(WebhookError):
    """No provider by that name (HTTP 404)."""


class CertificateUnavailableError(WebhookError):
    """The SNS signing certificate could not be fetched (HTTP 503, so that SNS retries)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderEvent:
    provider: str
    kind: Kind
    bounce_class: BounceClass
    recipient: str
    status: str | None
    diagnostic: str | None
    message_id: str | None
    return_path: str | None
    provider_event_id: str
    at: datetime
    provider_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """The events of one request, or the SNS SubscribeURL to confirm."""

    events: tuple[ProviderEvent, ...] = ()
    subscribe_url: str | None = None


def enhanced_status(status: str | None, diagnostic: str | None = None) -> str | None:
    """The status field when it is an enhanced code, else one read from the SMTP reply text."""
    if status is not None and (match := _STATUS.fullmatch(status)):
        return match.group(1)
    for text in (status, diagnostic):
        if text is None:
            continue
        for reply in _REPLY_STATUS.finditer(text):
            if reply.group(1) == reply.group(3):
                return reply.group(2)
    return None


def classify(kind: Kind, status: str | None, provider_class: ProviderClass) -> BounceClass:
    if kind == "complaint":
        return "complaint"
    if kind == "delivery":
        return "none"
    if kind == "deferred":
        return "soft"
    if status is not None and status.startswith("5"):
        return "hard"
    if status is not None and status.startswith("4"):
        return "soft"
    return provider_class


def normalize_recipient(value: str, where: str) -> str:
    address = parseaddr(value)[1] if "<" in value else value.strip()
    if "@" not in address or any(c.isspace() for c in address):
        raise BadPayload(f"{where}: not an email address")
    return address.lower()


def normalize_message_id(value: str | None) -> str | None:
    if value is None:
        return None
    core = value.strip().strip("<>").strip()
    return f"<{core}>" if core else None


def normalize_return_path(value: str | None) -> str | None:
    if value is None:
        return None
    address = parseaddr(value)[1] if "<" in value.strip()[1:] else value.strip().strip("<>")
    return address.strip() or None


def _text_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def derived_id(*parts: str) -> str:
    """A stable event id from the fields that identify an event, for providers that give none."""
    joined = "\x1f".join(parts).encode()
    return "d-" + hashlib.sha256(joined).hexdigest()[:32]


def event(
    *,
    provider: str,
    kind: Kind,
    recipient: str,
    event_id: str,
    at: datetime,
    where: str,
    provider_class: ProviderClass = "soft",
    status: str | None = None,
    diagnostic: str | None = None,
    message_id: str | None = None,
    return_path: str | None = None,
    provider_message_id: str | None = None,
) -> ProviderEvent:
    """One normalized event; `status` may be any text that holds an enhanced code."""
    code = enhanced_status(status, diagnostic) if kind in ("bounce", "deferred") else None
    return ProviderEvent(
        provider=provider,
        kind=kind,
        bounce_class=classify(kind, code, provider_class),
        recipient=normalize_recipient(recipient, where),
        status=code,
        diagnostic=_text_or_none(diagnostic),
        message_id=normalize_message_id(message_id),
        return_path=normalize_return_path(return_path),
        provider_event_id=event_id,
        at=at.astimezone(UTC),
        provider_message_id=provider_message_id,
    )
