"""The open pixel and the click redirect of sent messages (`GET /t/o/{token}`, `/t/c/{token}`).

Both answer at once, from the signed token alone: the click with a 302 to
the link's URL as it was in the message, the open with a 1x1 GIF. The hit
goes to the process's `HitWriter`, which stores it a moment later without
anyone waiting on the database. A token that does not verify gets a plain
404 and records nothing; an authentic click token past its lifetime is sent
to the home page of the link's site, and records nothing either. A HEAD
request (link checkers, previews) gets the same answer and records nothing.
"""

from typing import cast
from urllib.parse import urlsplit
from uuid import uuid4

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from api.graphql.state import AppState
from delivery.tracking.capture import Captured, HitWriter
from delivery.tracking.tokens import ExpiredTokenError, Kind, TokenError, Tokens, Tracked

# The smallest transparent GIF: 1x1, one colour, fully transparent.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
_NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, private", "Pragma": "no-cache"}
_NOT_FOUND = "This link is not valid. If it came in an email, the message may have been altered."
MAX_USER_AGENT = 512


def _parts(request: Request) -> tuple[AppState, Tokens, HitWriter]:
    app = request.app.state
    return cast("AppState", app.cdp), cast("Tokens", app.link_tokens), cast("HitWriter", app.hits)


def _not_found() -> Response:
    return PlainTextResponse(_NOT_FOUND, status_code=404, headers=_NO_STORE)


def _home_of(url: str | None) -> Response:
    """A redirect to the home page of the link's site (scheme, host and port only)."""
    try:
        parts = urlsplit(url or "")
        host, port = parts.hostname, parts.port
    except ValueError:
        return _not_found()
    if parts.scheme not in {"http", "https"} or not host:
        return _not_found()
    netloc = f"[{host}]" if ":" in host else host
    return RedirectResponse(f"{parts.scheme}://{netloc}{f':{port}' if port else ''}/",
                            status_code=302, headers=_NO_STORE)  # fmt: skip


def _keep(
    request: Request, writer: HitWriter, state: AppState, kind: str, tracked: Tracked
) -> None:
    if request.method == "HEAD":
        return
    agent = request.headers.get("user-agent")
    writer.add(Captured(
        workspace_id=tracked.workspace_id, id=uuid4(), kind=kind, delivery_id=tracked.delivery_id,
        link=tracked.link, url=tracked.url, at=state.clock.now(),
        ip=request.client.host if request.client else None,
        user_agent=agent[:MAX_USER_AGENT] if agent else None,
    ))  # fmt: skip


async def click(request: Request) -> Response:
    state, tokens, writer = _parts(request)
    try:
        tracked = tokens.read(request.path_params["token"], Kind.CLICK, state.clock.now())
    except ExpiredTokenError as expired:
        return _home_of(expired.tracked.url)
    except TokenError:
        return _not_found()
    _keep(request, writer, state, "click", tracked)
    return RedirectResponse(tracked.url or "/", status_code=302,
                            headers={**_NO_STORE, "Referrer-Policy": "no-referrer"})  # fmt: skip


async def open_pixel(request: Request) -> Response:
    state, tokens, writer = _parts(request)
    try:
        tracked = tokens.read(request.path_params["token"], Kind.OPEN, state.clock.now())
    except TokenError:
        return _not_found()
    _keep(request, writer, state, "open", tracked)
    return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)


routes = [
    Route("/t/c/{token}", click, methods=["GET", "HEAD"]),
    Route("/t/o/{token}", open_pixel, methods=["GET", "HEAD"]),
]
