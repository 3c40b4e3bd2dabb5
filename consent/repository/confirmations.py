"""Pending double opt-in grants: stored until the signed link confirms them."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import any_, delete, insert, select, update

from consent.model import ConsentChange
from consent.repository.params import change_columns, uuid_array
from consent.repository.rows import as_dicts
from consent.tables import consent_confirmations
from domain.personal_data import Subject
from domain.uow import UnitOfWork

c = consent_confirmations.c


@dataclass(frozen=True)
class PendingGrant:
    profile_id: UUID
    purpose: str
    channel: str
    lawful_basis: str
    source: str
    notice_version: str | None
    expires_at: datetime
    confirmed_at: datetime | None


async def insert_pending(
    uow: UnitOfWork,
    confirmation_id: UUID,
    profile_id: UUID,
    change: ConsentChange,
    *,
    actor: str,
    at: datetime,
    expires_at: datetime,
) -> None:
    await uow.execute(
        insert(consent_confirmations).values(
            workspace_id=uow.workspace_id,
            id=confirmation_id,
            profile_id=profile_id,
            **change_columns(change, actor=actor),
            requested_at=at,
            expires_at=expires_at,
        )
    )


async def lock(uow: UnitOfWork, confirmation_id: UUID) -> PendingGrant | None:
    """The confirmation, locked until the transaction ends, so two clicks confirm once."""
    row = (
        await uow.execute(
            select(
                c.profile_id,
                c.purpose,
                c.channel,
                c.lawful_basis,
                c.source,
                c.notice_version,
                c.expires_at,
                c.confirmed_at,
            )
            .where(c.workspace_id == uow.workspace_id, c.id == confirmation_id)
            .with_for_update()
        )
    ).first()
    return None if row is None else PendingGrant(**row._mapping)  # noqa: SLF001 - public mapping


async def mark_confirmed(uow: UnitOfWork, confirmation_id: UUID, at: datetime) -> None:
    await uow.execute(
        update(consent_confirmations)
        .where(c.workspace_id == uow.workspace_id, c.id == confirmation_id)
        .values(confirmed_at=at)
    )


async def export(uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
    rows = await uow.execute(
        select(
            c.id,
            c.profile_id,
            c.purpose,
            c.channel,
            c.lawful_basis,
            c.source,
            c.notice_version,
            c.ip,
            c.user_agent,
            c.requested_at,
            c.expires_at,
            c.confirmed_at,
        )
        .where(
            c.workspace_id == subject.workspace_id,
            c.profile_id == any_(uuid_array(subject.profile_ids)),
        )
        .order_by(c.requested_at)
    )
    return as_dicts(rows)


async def delete_for(uow: UnitOfWork, subject: Subject) -> int:
    result = await uow.execute(
        delete(consent_confirmations).where(
            c.workspace_id == subject.workspace_id,
            c.profile_id == any_(uuid_array(subject.profile_ids)),
        )
    )
    return int(result.rowcount or 0)
