"""`POST /webhooks/{provider}`: relays' reports of bounces, complaints and deliveries.

A request is verified before anything in it is read (`verify_and_parse`);
a bad signature gets 401 and changes nothing. Each event is routed to its
workspace by the signed return path or the Message-ID it names (both carry
the sending domain), and stored for the same processing as mail to
`cdp inbound`. An event that names nothing of ours is dropped, and counted
in the answer. An event seen before (the relay's own id) is stored once.
"""

import dataclasses
from typing import Any
from uuid import UUID

import httpx
import orjson
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.graphql.state import AppState
from api.http.bodies import BodyTooLargeError, read_capped
from delivery.deliverability import inbound, webhooks
from delivery.deliverability import repository as repo
from domain.ids import new_id
from domain.uow import UnitOfWork

log = structlog.get_logger("cdp.webhooks")
MAX_BODY = 1024 * 1024
_STATUS = {
    webhooks.BadSignature: 401,
    webhooks.BadPayload: 400,
    webhooks.UnknownProviderError: 404,
    webhooks.CertificateUnavailableError: 503,
}


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _config(state: AppState, request: Request) -> webhooks.WebhookConfig:
    """Built once per app from the settings; the SNS certificates are fetched and cached."""
    cached = getattr(request.app.state, "webhook_config", None)
    if isinstance(cached, webhooks.WebhookConfig):
        return cached
    s = state.settings
    arns = frozenset(a.strip() for a in (s.webhook_ses_topic_arns or "").split(",") if a.strip())
    source = webhooks.CachingCertificateSource(webhooks.HttpCertificateSource(_client(request)))
    config = webhooks.WebhookConfig(
        sendgrid_public_key=_secret(s.webhook_sendgrid_public_key),
        postmark_username=s.webhook_postmark_username,
        postmark_password=_secret(s.webhook_postmark_password),
        generic_secret=_secret(s.webhook_generic_secret),
        ses_topic_arns=arns or None,
        # Without a topic allow-list any AWS account could sign events for us.
        certificate_source=source if arns else None,
    )
    request.app.state.webhook_config = config
    return config


def _client(request: Request) -> httpx.AsyncClient:
    client = getattr(request.app.state, "webhook_http", None)
    if not isinstance(client, httpx.AsyncClient):
        client = request.app.state.webhook_http = httpx.AsyncClient()
    return client


def _router(state: AppState) -> inbound.Router:
    def units(workspace_id: UUID | None) -> UnitOfWork:
        return UnitOfWork(state.sessions, workspace_id=workspace_id, clock=state.clock,
                          on_commit=state.relay.wake)  # fmt: skip

    return inbound.Router(units, state.secret)


def _report(provider: str, event: webhooks.ProviderEvent) -> repo.NewReport:
    raw = orjson.dumps(dataclasses.asdict(event), default=str)
    return repo.NewReport(
        id=new_id(), source=f"webhook:{provider}", received_at=event.at, size=len(raw),
        mail_from=event.return_path, raw=raw, external_id=event.provider_event_id,
        kind=event.kind, bounce_class=event.bounce_class, status_code=event.status,
        recipients=(event.recipient,), message_id=event.message_id, diagnostic=event.diagnostic,
    )  # fmt: skip


async def receive(request: Request) -> Response:
    state: AppState = request.app.state.cdp
    provider = request.path_params["provider"]
    try:
        body = await read_capped(request, MAX_BODY)
    except BodyTooLargeError:
        return JSONResponse({"error": f"the body is over {MAX_BODY} bytes"}, status_code=413)
    config = _config(state, request)
    try:
        result = await webhooks.verify_and_parse(
            provider, dict(request.headers), body, config=config, now=state.clock.now()
        )
    except webhooks.WebhookError as exc:
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
        log.info("webhook.refused", provider=provider, status=status, reason=exc.reason)
        return JSONResponse({"error": exc.reason}, status_code=status)
    if result.subscribe_url and config.certificate_source is not None:
        if not webhooks.is_sns_url(result.subscribe_url):
            return JSONResponse({"error": "the subscription URL is not Amazon SNS's"}, 400)
        try:
            # Not through the certificate cache: a confirmation is fetched once.
            await webhooks.HttpCertificateSource(_client(request)).fetch(result.subscribe_url)
        except Exception as exc:  # noqa: BLE001 - SNS sends the confirmation again
            log.warning("webhook.subscription_failed", provider=provider, error=repr(exc))
            return JSONResponse({"error": "the subscription could not be confirmed"}, 503)
        log.info("webhook.subscribed", provider=provider)
    stored = await _store(state, provider, result.events)
    return JSONResponse({"received": len(result.events), "stored": stored})


async def _store(state: AppState, provider: str, events: tuple[webhooks.ProviderEvent, ...]) -> int:
    router = _router(state)
    by_workspace: dict[UUID, list[webhooks.ProviderEvent]] = {}
    for event in events:
        workspace_id = await router.workspace_of_event(event.return_path, event.message_id)
        if workspace_id is not None:
            by_workspace.setdefault(workspace_id, []).append(event)
    for workspace_id, found in by_workspace.items():
        async with router.units(workspace_id) as uow:
            await inbound.keep(uow, *(_report(provider, event) for event in found))
            await uow.commit()
    return sum(len(found) for found in by_workspace.values())


routes = [Route("/webhooks/{provider}", receive, methods=["POST"])]
