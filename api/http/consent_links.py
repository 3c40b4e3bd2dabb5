"""Pages behind signed links: one-click unsubscribe, the preference centre, double opt-in.

RFC 8058: a POST of `List-Unsubscribe=One-Click` answers 200 with no redirect
and no cookie. A GET never changes anything (mail scanners follow links), it
shows a page whose button makes the POST. Tokens are capabilities in the URL,
so responses are not cached and send no referrer.
"""

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

import structlog
from jinja2 import DictLoader, Environment, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from api.graphql.state import AppState
from api.http.bodies import BodyTooLargeError, read_capped
from consent import ledger, links
from consent.keys import LinkError
from consent.model import MAX_USER_AGENT_LENGTH, ConsentRecord, ConsentStatus
from delivery.tracking import unsubscribes
from domain import subjects
from domain.errors import DomainError
from domain.uow import UnitOfWork

ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
MAX_FORM_BYTES = 4096
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}

_TEMPLATES = {
    "base.html": """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;
line-height:1.5}button{font-size:1rem;padding:.5rem 1rem}td,th{padding:.3rem .6rem;text-align:left}
</style></head><body><h1>{{ title }}</h1>{% block body %}{% endblock %}</body></html>""",
    "message.html": """{% extends "base.html" %}{% block body %}<p>{{ message }}</p>{% endblock %}""",
    "unsubscribe.html": """{% extends "base.html" %}{% block body %}
<p>Stop receiving <strong>{{ purpose }}</strong> messages by <strong>{{ channel }}</strong>?</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form>{% endblock %}""",
    "confirm.html": """{% extends "base.html" %}{% block body %}
<p>Please confirm that you want to receive these messages.</p>
<form method="post"><button type="submit">Confirm</button></form>{% endblock %}""",
    "preferences.html": """{% extends "base.html" %}{% block body %}
{% if message %}<p><strong>{{ message }}</strong></p>{% endif %}
{% if rows %}<table><tr><th>Purpose</th><th>Channel</th><th>Status</th><th></th></tr>
{% for row in rows %}<tr><td>{{ row.purpose }}{% if row.notice %}<br><small>{{ row.notice }}</small>{% endif %}</td><td>{{ row.channel }}</td>
<td>{{ row.status }}</td><td><form method="post">
<input type="hidden" name="purpose" value="{{ row.purpose }}">
<input type="hidden" name="channel" value="{{ row.channel }}">
{% if row.granted %}<input type="hidden" name="action" value="withdraw">
<button type="submit">Withdraw</button>{% else %}
<input type="hidden" name="action" value="grant"><button type="submit">Subscribe</button>
{% endif %}</form></td></tr>{% endfor %}</table>
{% else %}<p>We hold no consent choices for you.</p>{% endif %}{% endblock %}""",
}
_pages = Environment(loader=DictLoader(_TEMPLATES), autoescape=select_autoescape(default=True))

log = structlog.get_logger(__name__)


def _page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    body = _pages.get_template(name).render(**values)
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


def _refused(error: DomainError) -> HTMLResponse:
    return _page("message.html", 400, title="This link cannot be used", message=error.message)


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.cdp
    return state


def _client_ip(request: Request) -> str | None:
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:  # a unix socket or a test client names no address
        return None


def _origin(request: Request) -> links.Origin:
    agent = request.headers.get("user-agent")
    return links.Origin(
        ip=_client_ip(request),
        user_agent=agent[:MAX_USER_AGENT_LENGTH] if agent else None,
    )


async def _form(request: Request) -> dict[str, str]:
    """The URL-encoded form of a POST (the first value of each field)."""
    try:
        body = await read_capped(request, MAX_FORM_BYTES)
    except BodyTooLargeError as exc:
        raise LinkError("the form is too large") from exc
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


@asynccontextmanager
async def _workspace(state: AppState, workspace_id: UUID) -> AsyncIterator[UnitOfWork]:
    async with state.uow() as uow:
        await uow.select_workspace(workspace_id)
        yield uow


async def _count_unsubscribe(state: AppState, target: links.LinkTarget, purpose: str) -> None:
    """Credit the unsubscribe to its message, in a transaction of its own: the withdrawal is
    committed whatever happens here."""
    try:
        async with _workspace(state, target.workspace_id) as uow:
            await unsubscribes.record(uow, target.profile_id, purpose,
                                      source=links.ONE_CLICK_SOURCE)  # fmt: skip
            await uow.commit()
    except Exception:  # the person is unsubscribed; only the campaign's count misses it
        log.exception("tracking.unsubscribe_not_counted", workspace_id=str(target.workspace_id))


async def unsubscribe(request: Request) -> Response:
    state = _state(request)
    try:
        target = links.read_unsubscribe(state.keys, request.path_params["token"])
        if request.method == "GET":
            return _page(
                "unsubscribe.html",
                title="Unsubscribe",
                purpose=target.purpose,
                channel=target.channel,
            )
        form = await _form(request)
        if form.get(ONE_CLICK_FIELD) != ONE_CLICK_VALUE:
            raise LinkError("expected List-Unsubscribe=One-Click")
        async with _workspace(state, target.workspace_id) as uow:
            record = await links.one_click_unsubscribe(uow, state.keys, target, _origin(request))
            await uow.commit()
        if record is not None and target.purpose is not None:
            await _count_unsubscribe(state, target, target.purpose)
    except DomainError as error:
        return _refused(error)
    return _page(
        "message.html",
        title="You are unsubscribed",
        message=f"You will no longer receive {target.purpose} messages by {target.channel}.",
    )


# Purposes offered in the preference centre without a record yet are offered by email.
OFFERED_CHANNEL = "email"


def _rows(records: list[ConsentRecord], notices: dict[str, ledger.Notice]) -> list[dict[str, Any]]:
    def notice(purpose: str) -> str | None:
        return notices[purpose].text if purpose in notices else None

    rows = [
        {
            "purpose": r.purpose,
            "channel": r.channel,
            "status": r.status.value.lower(),
            "granted": r.status is ConsentStatus.GRANTED,
            "notice": notice(r.purpose),
        }
        for r in records
    ]
    held = {(r.purpose, r.channel) for r in records}
    rows += [
        {
            "purpose": p,
            "channel": OFFERED_CHANNEL,
            "status": "not subscribed",
            "granted": False,
            "notice": notice(p),
        }
        for p in notices
        if (p, OFFERED_CHANNEL) not in held
    ]
    return sorted(rows, key=lambda row: (row["purpose"], row["channel"]))


async def preferences(request: Request) -> Response:
    state = _state(request)
    message = None
    try:
        target = links.read_preferences(state.keys, request.path_params["token"])
        # Read before a transaction opens: a slow client holds no connection.
        form = await _form(request) if request.method == "POST" else None
        async with _workspace(state, target.workspace_id) as uow:
            subject = await subjects.directory().of_profile(uow, target.profile_id)
            if subject is None:
                raise LinkError("nothing is held about you any more")
            if form is not None:
                action = form.get("action")
                if action not in {"grant", "withdraw"}:
                    raise LinkError("choose to subscribe or to withdraw")
                record = await links.set_preference(
                    uow,
                    state.keys,
                    subject,
                    channel=form.get("channel", ""),
                    purpose=form.get("purpose", ""),
                    granted=action == "grant",
                    origin=_origin(request),
                )
                await uow.commit()
                message = f"Saved: {record.purpose} by {record.channel} is now {record.status.value.lower()}."
            records = await ledger.current(uow, subject.profile_ids)
            notices = await ledger.latest_notices(uow)
    except DomainError as error:
        return _refused(error)
    rows = _rows(records, notices)
    return _page("preferences.html", title="Your preferences", rows=rows, message=message)


async def confirm(request: Request) -> Response:
    state = _state(request)
    try:
        workspace_id, confirmation_id = links.read_confirmation(
            state.keys, request.path_params["token"]
        )
        if request.method == "GET":
            return _page("confirm.html", title="Confirm your subscription")
        async with _workspace(state, workspace_id) as uow:
            record = await links.confirm(uow, confirmation_id, _origin(request))
            await uow.commit()
    except DomainError as error:
        return _refused(error)
    return _page(
        "message.html",
        title="Thank you",
        message=f"You are subscribed to {record.purpose} messages by {record.channel}.",
    )


routes = [
    Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
    Route("/preferences/{token}", preferences, methods=["GET", "POST"]),
    Route("/consent/confirm/{token}", confirm, methods=["GET", "POST"]),
]
