"""Keys derived from the server secret: identifier hashes and signed links.

Suppression entries are found by an HMAC of the normalized identifier under
a per-workspace key, so a copy of the database alone cannot be searched for
an email address, and one workspace's hashes say nothing about another's.
Links (one-click unsubscribe, preference centre, double opt-in) are signed
with a salt per use, so one kind of token is never accepted as another.
"""

import hashlib
import hmac
from dataclasses import replace
from typing import Any
from uuid import UUID

import orjson
from itsdangerous import (
    BadData,
    SignatureExpired,
    Signer,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import base64_encode

from domain.errors import AuthorizationError, ValidationError
from domain.personal_data import Subject

UNSUBSCRIBE = "cdp.unsubscribe"
PREFERENCES = "cdp.preferences"
CONFIRM = "cdp.confirm-consent"
_SHA256 = {"digest_method": hashlib.sha256}


class _KeptKeySigner(Signer):
    """itsdangerous's signer, its signing key derived once rather than for every token."""

    _derived: bytes | None = None

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key is not None:  # verifying tries each key it is given
            return super().derive_key(secret_key)
        if self._derived is None:
            self._derived = super().derive_key()
        return self._derived


class _LinkSerializer(URLSafeSerializer):
    """itsdangerous's URL-safe tokens, without first trying whether zlib makes them shorter,
    and with one signer kept for its salt.

    For a payload of a few ids zlib saves a few dozen characters, at a cost
    paid once or twice for every message a campaign sends, as was a new
    signer and key each token (bench/README.md, "Sending"). Tokens made
    either way verify either way.
    """

    _signer: Signer | None = None

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(orjson.dumps(obj))

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        if salt is not None:
            return super().make_signer(salt)
        if self._signer is None:
            self._signer = super().make_signer()
        return self._signer


class LinkError(AuthorizationError):
    """A link token is tampered, foreign, of another kind, or expired."""


class Keys:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValidationError("the signing secret must not be empty")
        self._secret = secret.encode()
        self._serializers: dict[str, URLSafeSerializer] = {}
        self._workspace_keys: dict[UUID, bytes] = {}  # a batch hashes many identifiers of one

    def _workspace_key(self, workspace_id: UUID) -> bytes:
        found = self._workspace_keys.get(workspace_id)
        if found is None:
            found = self._workspace_keys[workspace_id] = hmac.new(
                self._secret, b"suppression:" + workspace_id.bytes, hashlib.sha256
            ).digest()
        return found

    def identifier_digest(self, workspace_id: UUID, kind: str, value: str) -> bytes:
        message = f"{kind}\x00{value}".encode()
        return hmac.new(self._workspace_key(workspace_id), message, hashlib.sha256).digest()

    def digest_pads(self, workspace_id: UUID) -> tuple[bytes, bytes]:
        """The workspace key's HMAC inner and outer pads (RFC 2104).

        With them, SQL computes `identifier_digest` as two SHA-256 calls
        (`cdp_identifier_digest`, migration 0014) without holding the key.
        """
        key = self._workspace_key(workspace_id).ljust(hashlib.sha256().block_size, b"\0")
        return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)

    def digests(
        self, workspace_id: UUID, identifiers: tuple[tuple[str, str], ...]
    ) -> tuple[bytes, ...]:
        return tuple(self.identifier_digest(workspace_id, k, v) for k, v in identifiers)

    def hashed(self, subject: Subject) -> Subject:
        """The subject with the digests of its identifiers filled in."""
        return replace(subject, digests=self.digests(subject.workspace_id, subject.identifiers))

    def _timed(self, use: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secret, salt=use, signer_kwargs=_SHA256)

    def _untimed(self, use: str) -> URLSafeSerializer:
        # Kept per use: a campaign signs two links a message.
        found = self._serializers.get(use)
        if found is None:
            found = self._serializers[use] = _LinkSerializer(
                self._secret, salt=use, signer=_KeptKeySigner, signer_kwargs=_SHA256
            )
        return found

    def sign(self, use: str, payload: dict[str, Any]) -> str:
        return self._timed(use).dumps(payload)

    def sign_forever(self, use: str, payload: dict[str, Any]) -> str:
        # Unsubscribe links must keep working for as long as the mail is read.
        return self._untimed(use).dumps(payload)

    def verify(self, use: str, token: str, *, max_age: int | None = None) -> dict[str, Any]:
        try:
            if max_age is None:
                payload = self._untimed(use).loads(token)
            else:
                payload = self._timed(use).loads(token, max_age=max_age)
        except SignatureExpired as exc:
            raise LinkError("this link has expired") from exc
        except BadData as exc:
            raise LinkError("this link is not valid") from exc
        if not isinstance(payload, dict):
            raise LinkError("this link is not valid")
        return payload
