"""Relay webhooks (`POST /webhooks/{provider}`): verify the request, then read its events.

`verify_and_parse` is the one entry point. It proves the request came from
the provider before it reads the content, so an unproven request is refused
with `BadSignature` whatever it holds, and a provider without configured
secrets refuses everything. Nothing here writes: the caller acts on the
events, each of which has a stable `provider_event_id` for idempotency.
"""

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from delivery.deliverability.webhooks import generic, postmark, sendgrid, ses
from delivery.deliverability.webhooks.certificates import (
    CachingCertificateSource,
    CertificateSource,
    HttpCertificateSource,
)
from delivery.deliverability.webhooks.config import WebhookConfig
from delivery.deliverability.webhooks.model import (
    BadPayload,
    BadSignature,
    BounceClass,
    CertificateUnavailableError,
    Kind,
    ProviderEvent,
    UnknownProviderError,
    WebhookError,
    WebhookResult,
)
from delivery.deliverability.webhooks.sns import is_sns_url

Receiver = Callable[[Mapping[str, str], bytes, WebhookConfig, datetime], Awaitable[WebhookResult]]

PROVIDERS: Mapping[str, Receiver] = {
    ses.PROVIDER: ses.receive,
    sendgrid.PROVIDER: sendgrid.receive,
    postmark.PROVIDER: postmark.receive,
    generic.PROVIDER: generic.receive,
}


async def verify_and_parse(
    provider: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    config: WebhookConfig,
    now: datetime,
) -> WebhookResult:
    """The events of a verified request; raises a `WebhookError` subclass otherwise."""
    receive = PROVIDERS.get(provider)
    if receive is None:
        raise UnknownProviderError(f"unknown webhook provider {provider[:40]!r}")
    lowered = {name.lower(): value for name, value in headers.items()}
    return await receive(lowered, body, config, now)


__all__ = [
    "PROVIDERS",
    "BadPayload",
    "BadSignature",
    "BounceClass",
    "CachingCertificateSource",
    "CertificateSource",
    "CertificateUnavailableError",
    "HttpCertificateSource",
    "Kind",
    "ProviderEvent",
    "UnknownProviderError",
    "WebhookConfig",
    "WebhookError",
    "WebhookResult",
    "is_sns_url",
    "verify_and_parse",
]
