"""The consent ledger: append-only records, their current state, and the state at any moment.

A subject's records are those of every profile merged into it, so consent
follows merges; ordering by the time of recording means that when merged
profiles disagree, the latest word wins, and a withdrawal after a grant
stands.
"""

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text

from consent import audit
from consent.model import (
    MAX_USER_AGENT_LENGTH,
    ConsentRecord,
    ConsentStatus,
    LawfulBasis,
    check_lawful_basis,
    check_name,
    check_source,
)
from domain.errors import ValidationError
from domain.ids import new_id
from domain.sqlparams import array_literal
from domain.uow import UnitOfWork

_COLUMNS = (
    "id, profile_id, purpose, channel, status, lawful_basis, source, notice_version, actor, "
    "recorded_at"
)
MAX_NOTICE_LENGTH = 100_000


@dataclass(frozen=True)
class ConsentChange:
    """A validated change to record."""

    purpose: str
    channel: str
    status: ConsentStatus
    lawful_basis: LawfulBasis
    source: str
    notice_version: str | None = None
    ip: str | None = None
    user_agent: str | None = None

    def params(self) -> dict[str, Any]:
        """The change's columns as statement parameters (ledger and pending confirmations)."""
        return {
            "purpose": self.purpose,
            "channel": self.channel,
            "status": self.status.value,
            "basis": self.lawful_basis.value,
            "source": self.source,
            "notice": self.notice_version,
            "ip": self.ip,
            "ua": self.user_agent,
        }


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


def _record(row: Any) -> ConsentRecord:
    return ConsentRecord(
        id=row.id,
        profile_id=row.profile_id,
        purpose=row.purpose,
        channel=row.channel,
        status=ConsentStatus(row.status),
        lawful_basis=row.lawful_basis,
        source=row.source,
        notice_version=row.notice_version,
        actor=row.actor,
        recorded_at=row.recorded_at,
    )


async def check_notice(uow: UnitOfWork, purpose: str, version: str | None) -> None:
    if version is None:
        return
    found = await uow.execute(
        text(
            "SELECT 1 FROM consent_notices WHERE workspace_id = :ws AND purpose = :purpose "
            "AND version = :version"
        ),
        {"ws": uow.workspace_id, "purpose": purpose, "version": version},
    )
    if found.first() is None:
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
    inserted = await uow.execute(
        text(
            "INSERT INTO consent_notices (workspace_id, purpose, version, text, created_at) "
            "VALUES (:ws, :purpose, :version, :body, :now) ON CONFLICT DO NOTHING RETURNING 1"
        ),
        {
            "ws": uow.workspace_id,
            "purpose": purpose,
            "version": version,
            "body": body,
            "now": uow.clock.now(),
        },
    )
    if inserted.first() is None:
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
    row = (
        await uow.execute(
            text(
                "INSERT INTO consent_records (workspace_id, id, profile_id, purpose, channel, "  # noqa: S608 - fixed fragments
                "status, lawful_basis, source, notice_version, ip, user_agent, actor, recorded_at) "
                "VALUES (:ws, :id, :profile_id, :purpose, :channel, :status, :basis, :source, "
                f":notice, :ip, :ua, :actor, :now) RETURNING {_COLUMNS}"
            ),
            {
                "ws": uow.workspace_id,
                "id": record_id,
                "profile_id": profile_id,
                **change.params(),
                "actor": str(actor),
                "now": now,
            },
        )
    ).one()
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
    return _record(row)


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
    pairs = [(pid, position) for position, ids in enumerate(subjects) for pid in ids]
    found: list[list[ConsentRecord]] = [[] for _ in subjects]
    if not pairs:
        return found
    rows = await uow.execute(
        text(
            "SELECT DISTINCT ON (s.subject, r.purpose, r.channel) s.subject, r.id, r.profile_id, "
            "r.purpose, r.channel, r.status, r.lawful_basis, r.source, r.notice_version, r.actor, "
            "r.recorded_at FROM unnest(CAST(:pids AS uuid[]), CAST(:subjects AS int[])) "
            "AS s(pid, subject) JOIN consent_records r ON r.workspace_id = :ws "
            "AND r.profile_id = s.pid "
            "AND (CAST(:at AS timestamptz) IS NULL OR r.recorded_at <= CAST(:at AS timestamptz)) "
            "ORDER BY s.subject, r.purpose, r.channel, r.recorded_at DESC, r.id DESC"
        ),
        {
            "ws": uow.workspace_id,
            "pids": array_literal([pid for pid, _ in pairs]),
            "subjects": array_literal([position for _, position in pairs]),
            "at": at,
        },
    )
    for row in rows:
        found[row.subject].append(_record(row))
    return found


@dataclass(frozen=True)
class Notice:
    purpose: str
    version: str
    text: str


async def latest_notices(uow: UnitOfWork) -> dict[str, Notice]:
    """Each purpose's newest notice: what a person is shown when asked to consent."""
    rows = await uow.execute(
        text(
            "SELECT DISTINCT ON (purpose) purpose, version, text FROM consent_notices "
            "WHERE workspace_id = :ws ORDER BY purpose, created_at DESC, version DESC"
        ),
        {"ws": uow.workspace_id},
    )
    return {r.purpose: Notice(r.purpose, r.version, r.text) for r in rows}
