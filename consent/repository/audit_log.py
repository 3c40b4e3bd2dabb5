"""Audit log rows: written in the caller's transaction, read newest first."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Text, bindparam, cast, insert, select
from sqlalchemy.dialects.postgresql import JSONB

from consent.model import AuditEntry
from consent.repository.params import any_uuid
from consent.tables import audit_log
from domain.uow import UnitOfWork

_ENTRY = [c for c in audit_log.c if c.name != "workspace_id"]
# Details come serialized with orjson; the bind is not named after its column,
# which SQLAlchemy reserves for the VALUES clause.
_INSERT = insert(audit_log).values(details=cast(bindparam("details_json", type_=Text), JSONB))


@dataclass(frozen=True)
class NewEntry:
    id: UUID
    object_id: str
    details_json: str


async def insert_many(
    uow: UnitOfWork,
    entries: Sequence[NewEntry],
    *,
    at: datetime,
    actor_kind: str,
    actor_id: str,
    action: str,
    object_type: str,
    request_id: str | None,
) -> None:
    """One executemany, so a batch of entries costs one statement."""
    await uow.execute(
        _INSERT,
        [
            {
                "workspace_id": uow.workspace_id,
                "id": entry.id,
                "at": at,
                "actor_kind": actor_kind,
                "actor_id": actor_id,
                "action": action,
                "object_type": object_type,
                "object_id": entry.object_id,
                "request_id": request_id,
                "details_json": entry.details_json,
            }
            for entry in entries
        ],
    )


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(**row._mapping)  # noqa: SLF001 - SQLAlchemy's public mapping


async def newest(
    uow: UnitOfWork,
    *,
    limit: int,
    before: UUID | None = None,
    action: str | None = None,
    object_id: str | None = None,
) -> list[AuditEntry]:
    query = select(*_ENTRY).where(audit_log.c.workspace_id == uow.workspace_id)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if object_id is not None:
        query = query.where(audit_log.c.object_id == object_id)
    rows = await uow.execute(query.order_by(audit_log.c.id.desc()).limit(limit))
    return [_entry(r) for r in rows]


async def by_id(uow: UnitOfWork, ids: Sequence[UUID]) -> dict[UUID, AuditEntry]:
    rows = await uow.execute(
        select(*_ENTRY).where(
            audit_log.c.workspace_id == uow.workspace_id, audit_log.c.id == any_uuid(ids)
        )
    )
    return {r.id: _entry(r) for r in rows}
