"""OAuth2 token endpoint, client-credentials grant only (RFC 6749 section 4.4)."""

import base64
import binascii
from urllib.parse import unquote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.auth import issue_client_jwt
from domain import credentials
from domain.errors import AuthenticationError

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(code: str, description: str, status: int = 400) -> JSONResponse:
    headers = dict(_NO_STORE)
    if status == 401:  # noqa: PLR2004
        headers["WWW-Authenticate"] = 'Basic realm="cdp"'
    return JSONResponse(
        {"error": code, "error_description": description}, status_code=status, headers=headers
    )


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = raw.partition(":")
    return (unquote(user), unquote(password)) if sep else None


def _client_credentials(request: Request, form: FormData) -> tuple[str, str] | JSONResponse:
    """The client's id and secret, from the Authorization header or else the form."""
    basic = _basic(request.headers.get("authorization"))
    client_id, secret = basic or (
        str(form.get("client_id", "")),
        str(form.get("client_secret", "")),
    )
    if not client_id or not secret:
        return _error("invalid_client", "client authentication is required", 401)
    # No client id or secret holds a NUL, and PostgreSQL would refuse to look
    # one up. RFC 6749 section 5.2: credentials in the Authorization header
    # that fail are invalid_client (401); a malformed parameter in the form is
    # invalid_request (400).
    if "\x00" in client_id or "\x00" in secret:
        if basic is not None:
            return _error("invalid_client", "client authentication failed", 401)
        return _error("invalid_request", "client_id and client_secret must not hold NUL")
    return client_id, secret


async def token(request: Request) -> JSONResponse:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _error("invalid_request", "the body must be application/x-www-form-urlencoded")
    form = await request.form()
    if form.get("grant_type") != "client_credentials":
        return _error("unsupported_grant_type", "only grant_type=client_credentials is supported")
    credentials_or_error = _client_credentials(request, form)
    if isinstance(credentials_or_error, JSONResponse):
        return credentials_or_error
    client_id, secret = credentials_or_error
    state = request.app.state.cdp
    async with state.uow() as uow:
        try:
            client = await credentials.authenticate_oauth_client(uow, client_id, secret)
        except AuthenticationError:
            return _error("invalid_client", "client authentication failed", 401)
        workspace_id = uow.workspace_id
    requested = form.get("scope")
    scopes = frozenset(str(requested).split()) if requested else client.scopes
    if not scopes or not scopes <= client.scopes:
        return _error("invalid_scope", "the requested scope exceeds what the client was granted")
    issued = issue_client_jwt(
        client,
        workspace_id=workspace_id,
        scopes=scopes,
        secret=state.secret,
        ttl_seconds=state.settings.jwt_ttl_seconds,
        now=state.clock.now().timestamp(),
    )
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": " ".join(sorted(issued.scopes)),
        },
        headers=_NO_STORE,
    )
