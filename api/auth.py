"""Bearer authentication: workspace API tokens and OAuth2 client-credential JWTs."""

import time
from dataclasses import dataclass
from uuid import UUID

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from domain import credentials
from domain.credentials import Principal
from domain.errors import AuthenticationError
from domain.ids import new_id, parse_uuid
from domain.uow import UnitOfWork

JWT_ISSUER = "cdp"
JWT_AUDIENCE = "cdp-api"
JWT_ALGORITHM = "HS256"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scopes: frozenset[str]


def _key(secret: str) -> OctKey:
    return OctKey.import_key(secret)


def issue_client_jwt(
    client: credentials.OAuthClient,
    *,
    workspace_id: UUID,
    scopes: frozenset[str],
    secret: str,
    ttl_seconds: int,
    now: float | None = None,
) -> IssuedToken:
    issued_at = int(now if now is not None else time.time())
    claims = {
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "sub": client.client_id,
        "ws": str(workspace_id),
        "cid": str(client.id),
        "scope": " ".join(sorted(scopes)),
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
        "jti": str(new_id()),
    }
    token = jwt.encode({"alg": JWT_ALGORITHM, "typ": "JWT"}, claims, _key(secret))
    return IssuedToken(token, ttl_seconds, scopes)


def _verify_jwt(token: str, secret: str, now: float) -> tuple[UUID, UUID, frozenset[str]]:
    try:
        decoded = jwt.decode(token, _key(secret), algorithms=[JWT_ALGORITHM])
        jwt.JWTClaimsRegistry(
            now=int(now),
            iss={"essential": True, "value": JWT_ISSUER},
            aud={"essential": True, "value": JWT_AUDIENCE},
            exp={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        message = "token has expired" if "expired" in str(exc).lower() else "invalid token"
        raise AuthenticationError(message) from exc
    claims = decoded.claims
    workspace_id = parse_uuid(str(claims.get("ws")))
    client_row_id = parse_uuid(str(claims.get("cid")))
    if workspace_id is None or client_row_id is None:
        raise AuthenticationError("invalid token")
    scopes = frozenset(str(claims.get("scope", "")).split())
    return workspace_id, client_row_id, scopes


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def is_api_token(token: str) -> bool:
    return token.startswith(credentials.API_TOKEN_PREFIX + "_")


async def authenticate(uow: UnitOfWork, token: str | None, *, secret: str) -> Principal:
    """Resolve a bearer token to a principal, selecting its workspace on the unit of work."""
    if token is None:
        raise AuthenticationError("authentication required: send Authorization: Bearer <token>")
    if is_api_token(token):
        return await credentials.authenticate_api_token(uow, token)
    if token.count(".") == 2:  # noqa: PLR2004 - a compact JWS has three parts
        workspace_id, client_row_id, scopes = _verify_jwt(
            token, secret, uow.clock.now().timestamp()
        )
        await uow.select_workspace(workspace_id)
        client = await credentials.active_oauth_client(uow, client_row_id)
        return Principal(workspace_id, client.id, "oauth_client", scopes & client.scopes)
    raise AuthenticationError("invalid token")
