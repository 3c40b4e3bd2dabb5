"""The CDP's side of data-subject requests."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from cdp.subjects import ProfileDirectory
from domain.db import create_engine, session_factory
from domain.errors import ConflictError
from domain.personal_data import Subject
from domain.uow import UnitOfWork
from tests.support.database import APP_ROLE
from tests.support.factories import profile, seeding


async def _rectify(database_url: str, workspace_id: uuid.UUID, profile_id: uuid.UUID) -> list[str]:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=workspace_id) as uow:
            subject = Subject(workspace_id, (profile_id,))
            return await ProfileDirectory().rectify(
                uow, subject, {"name": "Corrected"}, datetime.now(UTC)
            )
    finally:
        await engine.dispose()


def test_rectifying_a_profile_merged_meanwhile_fails_instead_of_completing(database_url, workspace):
    """The request is then retried on the survivor; it never reports a change it did not make."""
    ws = workspace.workspace.id
    with seeding(database_url) as conn:
        survivor = profile(conn, ws)
        merged = profile(conn, ws, merged_into=survivor)
    with pytest.raises(ConflictError):
        asyncio.run(_rectify(database_url, ws, merged))
    assert asyncio.run(_rectify(database_url, ws, survivor)) == ["name"]
