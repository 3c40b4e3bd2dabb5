"""Sealed secrets open only with their SECRET_KEY and in their workspace."""

import uuid

import pytest

from delivery.sending.sealing import SealError, seal, unseal

SECRET = "s" * 40


def test_a_sealed_value_opens_with_its_secret_in_its_workspace_only():
    ws, other = uuid.uuid4(), uuid.uuid4()
    sealed = seal(SECRET, ws, b"-----BEGIN PRIVATE KEY-----")
    assert b"PRIVATE KEY" not in sealed
    assert unseal(SECRET, ws, sealed) == b"-----BEGIN PRIVATE KEY-----"
    with pytest.raises(SealError):
        unseal(SECRET, other, sealed)
    with pytest.raises(SealError):
        unseal("t" * 40, ws, sealed)
    with pytest.raises(SealError):
        unseal(SECRET, ws, sealed[:-2] + b"xx")
