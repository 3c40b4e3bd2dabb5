"""Data-subject request use cases. Services never commit; the actor runs the steps."""

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import orjson

from consent import audit, suppression
from consent.dsr.model import (
    EXPORTING,
    MAX_EXTENSION_MONTHS,
    MAX_NOTE_LENGTH,
    MAX_REASON_LENGTH,
    DataSubjectRequest,
    RequestStatus,
    RequestType,
    check_text,
    check_transition,
    due_at,
)
from consent.keys import Keys
from consent.model import ANY, MARKETING, SuppressionReason
from consent.repository import subject_requests
from domain import changes, subjects
from domain.errors import NotFoundError, ValidationError
from domain.ids import new_id
from domain.outbox import Job
from domain.personal_data import Subject, registry
from domain.uow import UnitOfWork

EXPORT_FORMAT = "cdp.data-subject-export/1"
PROCESS_ACTOR = "process_data_subject_request"
QUEUE = "compliance"
MAX_CORRECTIONS_BYTES = 32 * 1024
WORKER = audit.Actor.system("dsr-worker")


def _check_corrections(kind: RequestType, corrections: Any) -> dict[str, Any] | None:
    if kind is not RequestType.RECTIFICATION:
        if corrections is not None:
            raise ValidationError(
                "corrections are only taken with a RECTIFICATION request", field="corrections"
            )
        return None
    if not isinstance(corrections, dict) or not corrections:
        raise ValidationError(
            "a RECTIFICATION request needs corrections: a JSON object of traits "
            "(null removes a trait)",
            field="corrections",
        )
    if len(orjson.dumps(corrections)) > MAX_CORRECTIONS_BYTES:
        raise ValidationError("corrections must be at most 32 KB", field="corrections")
    return corrections


async def create(
    uow: UnitOfWork,
    keys: Keys,
    actor: audit.Actor,
    *,
    kind: str,
    value: str,
    request_type: RequestType,
    note: str | None = None,
    corrections: Any = None,
) -> DataSubjectRequest:
    """Record a verified request and queue its processing.

    Only a keyed hash of the identifier is stored: the request outlives an
    erasure, and must not undo it.
    """
    directory = subjects.directory()
    kind, value = directory.normalize(kind, value)
    note = check_text(note, "note", MAX_NOTE_LENGTH)
    checked = _check_corrections(request_type, corrections)
    subject = await directory.find(uow, kind, value)
    now = uow.clock.now()
    request_id = new_id()
    request = await subject_requests.insert_received(
        uow,
        request_id,
        request_type,
        identifier_kind=kind,
        identifier_digest=keys.identifier_digest(uow.workspace_id, kind, value),
        profile_id=subject.profile_id if subject else None,
        note=note,
        corrections_json=None if checked is None else orjson.dumps(checked).decode(),
        at=now,
        due_at=due_at(now),
        actor=str(actor),
    )
    await audit.record(
        uow,
        actor,
        "dsr.received",
        object_type="data_subject_request",
        object_id=request_id,
        details={"type": request_type.value, "identifier_kind": kind, "found": subject is not None},
    )
    await uow.enqueue(
        Job(PROCESS_ACTOR, (str(uow.workspace_id), str(request_id)), queue_name=QUEUE)
    )
    return request


async def get_many(uow: UnitOfWork, ids: list[UUID]) -> dict[UUID, DataSubjectRequest]:
    return await subject_requests.get_many(uow, ids)


async def get(uow: UnitOfWork, request_id: UUID, *, lock: bool = False) -> DataSubjectRequest:
    request = await subject_requests.get(uow, request_id, lock=lock)
    if request is None:
        raise NotFoundError("no data-subject request with this id", field="id")
    return request


async def list_requests(
    uow: UnitOfWork, *, limit: int, after: UUID | None = None, status: RequestStatus | None = None
) -> list[DataSubjectRequest]:
    """Oldest first, so the requests nearest their deadline come first."""
    return await subject_requests.oldest_first(uow, limit=limit, after=after, status=status)


async def export_of(uow: UnitOfWork, request_id: UUID) -> dict[str, Any] | None:
    return await subject_requests.export_of(uow, request_id)


async def read_export(
    uow: UnitOfWork, actor: audit.Actor, request_id: UUID
) -> dict[str, Any] | None:
    """The export of a completed ACCESS or PORTABILITY request, its reading audited.

    None (and nothing audited) when the request has no export.
    """
    document = await export_of(uow, request_id)
    if document is not None:
        await audit.record(
            uow, actor, "dsr.export_read", object_type="data_subject_request", object_id=request_id
        )
    return document


async def _set_status(
    uow: UnitOfWork, request: DataSubjectRequest, status: RequestStatus, **extra: Any
) -> None:
    check_transition(request.status, status)
    await subject_requests.update_request(
        uow, request.id, status=status.value, updated_at=uow.clock.now(), **extra
    )


async def extend(
    uow: UnitOfWork, actor: audit.Actor, request_id: UUID, *, months: int, reason: str
) -> DataSubjectRequest:
    """Extend the deadline by whole months (Art. 12(3): two more at most), with a reason."""
    cleaned = check_text(reason, "reason", MAX_REASON_LENGTH, required=True)
    request = await get(uow, request_id, lock=True)
    if not request.is_open:
        raise ValidationError(f"a {request.status.value} request cannot be extended", field="id")
    total = request.extended_months + months
    if months < 1 or total > MAX_EXTENSION_MONTHS:
        raise ValidationError(
            f"a request may be extended by {MAX_EXTENSION_MONTHS} months at most in all "
            f"(already {request.extended_months})",
            field="months",
        )
    await subject_requests.update_request(
        uow,
        request_id,
        extended_months=total,
        extension_reason=cleaned,
        due_at=due_at(request.received_at, total),
        updated_at=uow.clock.now(),
    )
    await audit.record(
        uow,
        actor,
        "dsr.extended",
        object_type="data_subject_request",
        object_id=request_id,
        details={"months": months, "extended_months": total},
    )
    return await get(uow, request_id)


async def reject(
    uow: UnitOfWork, actor: audit.Actor, request_id: UUID, *, reason: str
) -> DataSubjectRequest:
    """Refuse a request (manifestly unfounded or excessive, Art. 12(5)), saying why."""
    cleaned = check_text(reason, "reason", MAX_REASON_LENGTH, required=True)
    request = await get(uow, request_id, lock=True)
    await _set_status(
        uow, request, RequestStatus.REJECTED, rejection_reason=cleaned, completed_at=uow.clock.now()
    )
    await audit.record(
        uow, actor, "dsr.rejected", object_type="data_subject_request", object_id=request_id
    )
    return await get(uow, request_id)


async def start(uow: UnitOfWork, request_id: UUID) -> bool:
    """Mark a received request IN_PROGRESS; False when there is nothing left to do."""
    request = await get(uow, request_id, lock=True)
    if request.status is RequestStatus.RECEIVED:
        await _set_status(uow, request, RequestStatus.IN_PROGRESS)
        await audit.record(
            uow,
            WORKER,
            "dsr.started",
            object_type="data_subject_request",
            object_id=request_id,
            details={"type": request.type.value},
        )
        return True
    return request.status is RequestStatus.IN_PROGRESS


async def _subject(uow: UnitOfWork, keys: Keys, request: DataSubjectRequest) -> Subject:
    digest = request.identifier_digest
    found = None
    if request.profile_id is not None:
        found = await subjects.directory().of_profile(uow, request.profile_id)
    if found is None:
        return Subject(uow.workspace_id, (), (), (digest,))
    digests = keys.digests(uow.workspace_id, found.identifiers)
    return Subject(
        found.workspace_id,
        found.profile_ids,
        found.identifiers,
        tuple(dict.fromkeys((*digests, digest))),
    )


def _kinds_and_digests(subject: Subject, request: DataSubjectRequest) -> list[tuple[str, bytes]]:
    pairs = [(kind, d) for (kind, _), d in zip(subject.identifiers, subject.digests, strict=False)]
    seen = {d for _, d in pairs}
    pairs.extend((request.identifier_kind, d) for d in subject.digests if d not in seen)
    return pairs


def _json_default(value: object) -> object:
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(type(value).__name__)


async def _export(
    uow: UnitOfWork, request: DataSubjectRequest, subject: Subject
) -> Mapping[str, int]:
    stores = {h.table: await h.export(uow, subject) for h in registry.handlers()}
    document = {
        "format": EXPORT_FORMAT,
        "request_id": request.id,
        "request_type": request.type.value,
        "generated_at": uow.clock.now(),
        "subject": {
            "profile_id": subject.profile_id,
            "profile_ids": subject.profile_ids,
            "identifiers": [{"kind": k, "value": v} for k, v in subject.identifiers],
        },
        "stores": stores,
    }
    await subject_requests.store_export(
        uow, request.id, orjson.dumps(document, default=_json_default).decode()
    )
    return {table: len(rows) for table, rows in stores.items()}


async def _erase(
    uow: UnitOfWork, subject: Subject, request: DataSubjectRequest
) -> Mapping[str, int]:
    # The tombstone first: whatever happens next, this person is not mailed again.
    await suppression.add(
        uow,
        WORKER,
        digests=_kinds_and_digests(subject, request),
        channel=ANY,
        purpose=ANY,
        reason=SuppressionReason.ERASED,
        source=f"data-subject-request:{request.id}",
        object_id=request.id,
    )
    return {h.table: await h.erase(uow, subject) for h in registry.handlers()}


async def carry_out(uow: UnitOfWork, keys: Keys, request_id: UUID) -> DataSubjectRequest:
    """Do what an IN_PROGRESS request asks and complete it. Safe to run again."""
    request = await get(uow, request_id, lock=True)
    if request.status is not RequestStatus.IN_PROGRESS:
        return request
    subject = await _subject(uow, keys, request)
    details: dict[str, Any] = {"type": request.type.value}
    if request.type in EXPORTING:
        details["exported"] = await _export(uow, request, subject)
    elif request.type is RequestType.ERASURE:
        details["erased"] = await _erase(uow, subject, request)
    elif request.type is RequestType.RECTIFICATION:
        details["traits"] = await subjects.directory().rectify(
            uow, subject, request.corrections or {}, uow.clock.now()
        )
    else:
        restriction = request.type is RequestType.RESTRICTION
        details["suppressed"] = await suppression.add(
            uow,
            WORKER,
            digests=_kinds_and_digests(subject, request),
            channel=ANY,
            purpose=ANY if restriction else MARKETING,
            reason=SuppressionReason.RESTRICTED if restriction else SuppressionReason.OBJECTED,
            source=f"data-subject-request:{request.id}",
            object_id=request.id,
        )
        if restriction:
            details["restricted_profiles"] = await subjects.directory().restrict(
                uow, subject, uow.clock.now()
            )
    if request.type not in EXPORTING:
        changes.touched(uow, subject.profile_ids, changes.PROFILE)
    await _set_status(uow, request, RequestStatus.COMPLETED, completed_at=uow.clock.now())
    await audit.record(
        uow,
        WORKER,
        "dsr.completed",
        object_type="data_subject_request",
        object_id=request_id,
        details=details,
    )
    return await get(uow, request_id)


async def lift_restriction(
    uow: UnitOfWork, keys: Keys, actor: audit.Actor, *, kind: str, value: str
) -> int:
    directory = subjects.directory()
    kind, value = directory.normalize(kind, value)
    subject = await directory.find(uow, kind, value)
    pairs = subject.identifiers if subject else ((kind, value),)
    digests = keys.digests(uow.workspace_id, pairs)
    if subject is not None:
        await directory.restrict(uow, subject, None)
        changes.touched(uow, subject.profile_ids, changes.PROFILE)
    return await suppression.lift(
        uow,
        actor,
        digests=digests,
        reason=SuppressionReason.RESTRICTED,
        object_id=subject.profile_id if subject else "unknown",
    )
