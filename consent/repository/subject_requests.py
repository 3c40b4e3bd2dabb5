"""Data-subject request rows: the request, its status and deadline, and its export."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, any_, insert, null, or_, select, update

from consent.dsr.model import DataSubjectRequest, RequestStatus, RequestType
from consent.repository.params import any_bytes, any_uuid, jsonb, uuid_array
from consent.repository.rows import as_dicts
from consent.tables import data_subject_requests
from domain.personal_data import Subject
from domain.uow import UnitOfWork

t = data_subject_requests
c = t.c
_REQUEST = [column for column in c if column.name not in {"workspace_id", "export"}]


def _request(row: Any) -> DataSubjectRequest:
    values = dict(row._mapping)  # noqa: SLF001 - SQLAlchemy's public row mapping
    values["type"] = RequestType(values["type"])
    values["status"] = RequestStatus(values["status"])
    values["identifier_digest"] = bytes(values["identifier_digest"])
    return DataSubjectRequest(**values)


async def insert_received(
    uow: UnitOfWork,
    request_id: UUID,
    request_type: RequestType,
    *,
    identifier_kind: str,
    identifier_digest: bytes,
    profile_id: UUID | None,
    note: str | None,
    corrections_json: str | None,
    at: datetime,
    due_at: datetime,
    actor: str,
) -> DataSubjectRequest:
    row = (
        await uow.execute(
            insert(t)
            .values(
                workspace_id=uow.workspace_id,
                id=request_id,
                type=request_type.value,
                status=RequestStatus.RECEIVED.value,
                identifier_kind=identifier_kind,
                identifier_digest=identifier_digest,
                profile_id=profile_id,
                note=note,
                corrections=jsonb(corrections_json),
                received_at=at,
                due_at=due_at,
                actor=actor,
                updated_at=at,
            )
            .returning(*_REQUEST)
        )
    ).one()
    return _request(row)


async def get_many(uow: UnitOfWork, ids: Sequence[UUID]) -> dict[UUID, DataSubjectRequest]:
    rows = await uow.execute(
        select(*_REQUEST).where(c.workspace_id == uow.workspace_id, c.id == any_uuid(ids))
    )
    return {r.id: _request(r) for r in rows}


async def get(
    uow: UnitOfWork, request_id: UUID, *, lock: bool = False
) -> DataSubjectRequest | None:
    """`lock` holds the row until the transaction ends, so steps on one request take turns."""
    query = select(*_REQUEST).where(c.workspace_id == uow.workspace_id, c.id == request_id)
    if lock:
        query = query.with_for_update()
    row = (await uow.execute(query)).first()
    return None if row is None else _request(row)


async def oldest_first(
    uow: UnitOfWork, *, limit: int, after: UUID | None, status: RequestStatus | None
) -> list[DataSubjectRequest]:
    query = select(*_REQUEST).where(c.workspace_id == uow.workspace_id)
    if status is not None:
        query = query.where(c.status == status.value)
    if after is not None:
        query = query.where(c.id > after)
    rows = await uow.execute(query.order_by(c.id).limit(limit))
    return [_request(r) for r in rows]


async def export_of(uow: UnitOfWork, request_id: UUID) -> dict[str, Any] | None:
    row = (
        await uow.execute(
            select(c.export).where(c.workspace_id == uow.workspace_id, c.id == request_id)
        )
    ).first()
    return None if row is None else row.export


async def update_request(uow: UnitOfWork, request_id: UUID, **values: Any) -> None:
    """Set columns of one request; the caller has checked the change against the rules."""
    await uow.execute(
        update(t).where(c.workspace_id == uow.workspace_id, c.id == request_id).values(**values)
    )


async def store_export(uow: UnitOfWork, request_id: UUID, document_json: str) -> None:
    await update_request(uow, request_id, export=jsonb(document_json))


def _of_subject(subject: Subject) -> ColumnElement[bool]:
    return (c.workspace_id == subject.workspace_id) & or_(
        c.profile_id == any_(uuid_array(subject.profile_ids)),
        c.identifier_digest == any_bytes(subject.digests),
    )


async def export_for(uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
    """The subject's requests, leaving out earlier exports: copies of what an export holds."""
    rows = await uow.execute(
        select(
            c.id,
            c.type,
            c.status,
            c.note,
            c.corrections,
            c.received_at,
            c.due_at,
            c.extension_reason,
            c.completed_at,
            c.rejection_reason,
        )
        .where(_of_subject(subject))
        .order_by(c.id)
    )
    return as_dicts(rows)


async def erase_for(uow: UnitOfWork, subject: Subject) -> int:
    """Clear the note, corrections and export of the subject's requests; the rest is proof."""
    result = await uow.execute(
        update(t)
        .where(
            _of_subject(subject),
            or_(c.note.is_not(None), c.corrections.is_not(None), c.export.is_not(None)),
        )
        # null(): the JSON type would write None as the JSON value null.
        .values(note=None, corrections=null(), export=null())
    )
    return int(result.rowcount or 0)
