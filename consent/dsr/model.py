"""Data-subject request rules without I/O: types, the status machine, due dates."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from dateutil.relativedelta import relativedelta

from domain.errors import ConflictError, ValidationError


class RequestType(StrEnum):
    ACCESS = "ACCESS"
    PORTABILITY = "PORTABILITY"
    ERASURE = "ERASURE"
    RECTIFICATION = "RECTIFICATION"
    RESTRICTION = "RESTRICTION"
    OBJECTION = "OBJECTION"


class RequestStatus(StrEnum):
    RECEIVED = "RECEIVED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"


EXPORTING = frozenset({RequestType.ACCESS, RequestType.PORTABILITY})
OPEN = frozenset({RequestStatus.RECEIVED, RequestStatus.IN_PROGRESS})
TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.RECEIVED: frozenset({RequestStatus.IN_PROGRESS, RequestStatus.REJECTED}),
    RequestStatus.IN_PROGRESS: frozenset({RequestStatus.COMPLETED, RequestStatus.REJECTED}),
    RequestStatus.COMPLETED: frozenset(),
    RequestStatus.REJECTED: frozenset(),
}
MAX_EXTENSION_MONTHS = 2
MAX_NOTE_LENGTH = 2000
MAX_REASON_LENGTH = 2000


def due_at(received_at: datetime, extended_months: int = 0) -> datetime:
    """One calendar month from receipt (GDPR Art. 12(3)), by the ICO's rule.

    The deadline is the same day of the next month; when that month has no
    such day, it is the month's last day (received 31 January: due on the last
    day of February). An extension adds whole calendar months the same way,
    counted from receipt.
    """
    return received_at + relativedelta(months=1 + extended_months)


def parse_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ValidationError("not a data-subject request id", field="id") from None


def check_transition(current: RequestStatus, wanted: RequestStatus) -> None:
    if wanted not in TRANSITIONS[current]:
        raise ConflictError(
            f"a {current.value} request cannot become {wanted.value}", field="status"
        )


def check_text(value: str | None, field: str, limit: int, *, required: bool = False) -> str | None:
    cleaned = value.strip() if value is not None else None
    if required and not cleaned:
        raise ValidationError(f"{field} is required", field=field)
    if cleaned is not None and len(cleaned) > limit:
        raise ValidationError(f"{field} must be at most {limit} characters", field=field)
    return cleaned or None


@dataclass(frozen=True)
class DataSubjectRequest:
    id: UUID
    type: RequestType
    status: RequestStatus
    identifier_kind: str
    identifier_digest: bytes
    profile_id: UUID | None
    note: str | None
    corrections: dict[str, Any] | None
    received_at: datetime
    due_at: datetime
    extended_months: int
    extension_reason: str | None
    completed_at: datetime | None
    rejection_reason: str | None
    actor: str
    updated_at: datetime

    @property
    def is_open(self) -> bool:
        return self.status in OPEN
