"""The consent ledger's rows: appended, never changed but for erasure's anonymization."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, any_, column, func, insert, select, true
from sqlalchemy.dialects.postgresql import distinct_on

from consent.model import ConsentChange, ConsentRecord, ConsentStatus
from consent.repository.params import UUID_TYPE, change_columns, int_array, uuid_array
from consent.repository.rows import as_dicts
from consent.tables import consent_records
from domain.personal_data import Subject
from domain.uow import UnitOfWork

c = consent_records.c
_RECORD = (
    c.id,
    c.profile_id,
    c.purpose,
    c.channel,
    c.status,
    c.lawful_basis,
    c.source,
    c.notice_version,
    c.actor,
    c.recorded_at,
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


async def insert_record(
    uow: UnitOfWork,
    record_id: UUID,
    profile_id: UUID,
    change: ConsentChange,
    *,
    actor: str,
    at: datetime,
) -> ConsentRecord:
    row = (
        await uow.execute(
            insert(consent_records)
            .values(
                workspace_id=uow.workspace_id,
                id=record_id,
                profile_id=profile_id,
                status=change.status.value,
                **change_columns(change, actor=actor),
                recorded_at=at,
            )
            .returning(*_RECORD)
        )
    ).one()
    return _record(row)


async def current_for_many(
    uow: UnitOfWork, subjects: Sequence[Sequence[UUID]], *, at: datetime | None
) -> list[list[ConsentRecord]]:
    """The latest record per purpose and channel of each subject, as of `at`, in one statement.

    Each subject is given by its profile ids; the answer is in their order.
    """
    pairs = [(pid, position) for position, ids in enumerate(subjects) for pid in ids]
    found: list[list[ConsentRecord]] = [[] for _ in subjects]
    if not pairs:
        return found
    s = (
        func.unnest(
            uuid_array([pid for pid, _ in pairs]),
            int_array([position for _, position in pairs]),
        )
        .table_valued(column("pid", UUID_TYPE), column("subject", Integer))
        .render_derived(name="s")
    )
    # Each subject's records by the profile index, one probe per profile id: a
    # join planned on statistics read every record of the workspace when
    # they were stale (bench/README.md, "Sending"), and OFFSET keeps the
    # planner from turning the probe back into that join.
    probe = select(*_RECORD).where(c.workspace_id == uow.workspace_id, c.profile_id == s.c.pid)
    if at is not None:
        probe = probe.where(c.recorded_at <= at)
    r = probe.offset(0).lateral("r")
    query = (
        select(s.c.subject, *r.c)
        .ext(distinct_on(s.c.subject, r.c.purpose, r.c.channel))
        .select_from(s.join(r, true()))
        .order_by(s.c.subject, r.c.purpose, r.c.channel, r.c.recorded_at.desc(), r.c.id.desc())
    )
    for row in await uow.execute(query):
        found[row.subject].append(_record(row))
    return found


async def export(uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
    rows = await uow.execute(
        select(
            c.id,
            c.profile_id,
            c.purpose,
            c.channel,
            c.status,
            c.lawful_basis,
            c.source,
            c.notice_version,
            c.ip,
            c.user_agent,
            c.actor,
            c.recorded_at,
        )
        .where(
            c.workspace_id == subject.workspace_id,
            c.profile_id == any_(uuid_array(subject.profile_ids)),
        )
        .order_by(c.recorded_at, c.id)
    )
    return as_dicts(rows)


async def anonymize(uow: UnitOfWork, subject: Subject) -> int:
    """Clear ip and user agent of the profiles' records, in the current workspace.

    The runtime role cannot UPDATE the ledger; an owner function does this one change.
    """
    result = await uow.execute(
        select(func.cdp_anonymize_consent_records(uuid_array(subject.profile_ids)))
    )
    return int(result.scalar_one())
