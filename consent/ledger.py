"""The consent ledger: append-only records, their current state, and the state at any moment.

A subject's records are those of every profile merged into it, so consent
follows merges; ordering by the time of recording means that when merged
profiles disagree, the latest word wins, and a withdrawal after a grant
stands.
"""

import ipaddress
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from consent import audit
from consent.model import (
    MAX_USER_AGENT_LENGTH,
    ConsentChange,
    ConsentRecord,
    ConsentStatus,
    Notice,
    check_lawful_basis,
    check_name,
    check_source,
)
from consent.repository import consent_records, notices
from domain import changes
from domain.errors import ValidationError
from domain.ids import new_id
from domain.uow import UnitOfWork

__all__ = [
    "MAX_NOTICE_LENGTH",
    "ConsentChange",
    "Notice",
    "append",
    "check_notice",
    "consent_change",
    "current",
    "current_for_many",
    "latest_notices",
    "publish_notice",
]

MAX_NOTICE_LENGTH = 100_000


def _ip_address(ip: str) -> str:
    """The address in its canonical form; proof of consent keeps no free text here."""
    try:
        return str(ipaddress.ip_address(ip.strip()))
    except ValueError as exc:
        raise ValidationError("ip must be an IPv4 or IPv6 address", field="ip") from exc


def consent_change(
    *,
    purpose: str,
    channel: str,
    status: ConsentStatus,
    lawful_basis: str,
    source: str,
    notice_version: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> ConsentChange:
    if ip is not None:
        ip = _ip_address(ip)
    if user_agent is not None and len(user_agent) > MAX_USER_AGENT_LENGTH:
        raise ValidationError(
            f"userAgent must be at most {MAX_USER_AGENT_LENGTH} characters", field="userAgent"
        )
    return ConsentChange(
        purpose=check_name(purpose, "purpose"),
        channel=check_name(channel, "channel"),
        status=status,
        lawful_basis=check_lawful_basis(lawful_basis),
        source=check_source(source),
        notice_version=notice_version.strip() if notice_version else None,
        ip=ip,
        user_agent=user_agent,
    )


async def check_notice(uow: UnitOfWork, purpose: str, version: str | None) -> None:
    if version is None:
        return
    if not await notices.exists(uow, purpose, version):
        raise ValidationError(
            f"no notice {version!r} is published for purpose {purpose!r}", field="noticeVersion"
        )


async def publish_notice(
    uow: UnitOfWork, actor: audit.Actor, *, purpose: str, version: str, body: str
) -> None:
    """Store the text a person is shown when asked for consent; versions never change."""
    purpose = check_name(purpose, "purpose")
    version = version.strip()
    if not version or len(version) > 64:  # noqa: PLR2004
        raise ValidationError("version must be 1 to 64 characters", field="version")
    if not body.strip() or len(body) > MAX_NOTICE_LENGTH:
        raise ValidationError(f"text must be 1 to {MAX_NOTICE_LENGTH} characters", field="text")
    if not await notices.insert_new(uow, purpose, version, body, uow.clock.now()):
        raise ValidationError(
            f"notice {version!r} for {purpose!r} already exists; publish a new version",
            field="version",
        )
    await audit.record(
        uow,
        actor,
        "consent.notice_published",
        object_type="consent_notice",
        object_id=f"{purpose}/{version}",
    )


async def append(
    uow: UnitOfWork, actor: audit.Actor, profile_id: UUID, change: ConsentChange
) -> ConsentRecord:
    """Append one record (the caller has checked the notice) and audit it."""
    record_id = new_id()
    now = uow.clock.now()
    record = await consent_records.insert_record(
        uow, record_id, profile_id, change, actor=str(actor), at=now
    )
    changes.touched(uow, [profile_id], changes.CONSENT)
    await audit.record(
        uow,
        actor,
        "consent.recorded",
        object_type="profile",
        object_id=profile_id,
        details={
            "consent_record_id": str(record_id),
            "purpose": change.purpose,
            "channel": change.channel,
            "status": change.status.value,
            "lawful_basis": change.lawful_basis.value,
            "source": change.source,
        },
    )
    return record


async def current(
    uow: UnitOfWork, profile_ids: Sequence[UUID], *, at: datetime | None = None
) -> list[ConsentRecord]:
    """The latest record per purpose and channel across the subject's profiles, as of `at`."""
    return (await current_for_many(uow, [profile_ids], at=at))[0]


async def current_for_many(
    uow: UnitOfWork, subjects: Sequence[Sequence[UUID]], *, at: datetime | None = None
) -> list[list[ConsentRecord]]:
    """`current` for many subjects (each given by its profile ids) in one statement.

    The answer is in the order of `subjects`.
    """
    return await consent_records.current_for_many(uow, subjects, at=at)


async def latest_notices(uow: UnitOfWork) -> dict[str, Notice]:
    """Each purpose's newest notice: what a person is shown when asked to consent."""
    return await notices.latest(uow)
