"""Consent notices: the published text of each purpose, one row per version."""

from datetime import datetime

from sqlalchemy import literal_column, select
from sqlalchemy.dialects.postgresql import distinct_on, insert

from consent.model import Notice
from consent.tables import consent_notices
from domain.uow import UnitOfWork

c = consent_notices.c


async def exists(uow: UnitOfWork, purpose: str, version: str) -> bool:
    found = await uow.execute(
        select(literal_column("1")).where(
            c.workspace_id == uow.workspace_id, c.purpose == purpose, c.version == version
        )
    )
    return found.first() is not None


async def insert_new(uow: UnitOfWork, purpose: str, version: str, body: str, at: datetime) -> bool:
    """False when this purpose already has this version: versions never change."""
    inserted = await uow.execute(
        insert(consent_notices)
        .values(
            workspace_id=uow.workspace_id,
            purpose=purpose,
            version=version,
            text=body,
            created_at=at,
        )
        .on_conflict_do_nothing()
        .returning(literal_column("1"))
    )
    return inserted.first() is not None


async def latest(uow: UnitOfWork) -> dict[str, Notice]:
    """Each purpose's newest notice."""
    rows = await uow.execute(
        select(c.purpose, c.version, c.text)
        .ext(distinct_on(c.purpose))
        .where(c.workspace_id == uow.workspace_id)
        .order_by(c.purpose, c.created_at.desc(), c.version.desc())
    )
    return {r.purpose: Notice(r.purpose, r.version, r.text) for r in rows}
