"""Secrets at rest (DKIM private keys), sealed with a key derived from SECRET_KEY.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) seals; HKDF
derives its key from SECRET_KEY for this one use, and binds each sealed
value to its workspace, so a value copied to another workspace's row does
not open there. Changing SECRET_KEY makes the sealed keys unreadable: keep
it stable (README, "Settings").
"""

import base64
from functools import cache
from uuid import UUID

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_USE = b"cdp sealed secrets v1"


class SealError(ValueError):
    """A sealed value does not open with this SECRET_KEY and workspace."""


@cache
def _fernet(secret: str, workspace_id: UUID) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=workspace_id.bytes, info=_USE).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str, workspace_id: UUID, value: bytes) -> bytes:
    return _fernet(secret, workspace_id).encrypt(value)


def unseal(secret: str, workspace_id: UUID, sealed: bytes) -> bytes:
    try:
        return _fernet(secret, workspace_id).decrypt(sealed)
    except InvalidToken:
        raise SealError(
            "a sealed secret does not open: SECRET_KEY changed, or the value was moved"
        ) from None
