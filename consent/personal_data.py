"""Exporters and erasers for the consent context's personal data."""

from dataclasses import asdict
from typing import Any

from sqlalchemy import text

from consent import suppression
from domain.personal_data import Subject, registry
from domain.sqlparams import array_literal
from domain.uow import UnitOfWork


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]  # noqa: SLF001 - SQLAlchemy's public row mapping


def _params(subject: Subject) -> dict[str, Any]:
    return {"ws": subject.workspace_id, "ids": array_literal(subject.profile_ids)}


class ConsentRecords:
    table = "consent_records"
    category = "consent decisions, with the ip and user agent they were given from"
    purpose = "proving consent (GDPR Art. 7(1))"
    retention = (
        "kept as proof for as long as processing relies on it; ip and user agent are "
        "anonymized on erasure (the ledger is append-only)"
    )

    async def export(self, uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
        return _rows(
            await uow.execute(
                text(
                    "SELECT id, profile_id, purpose, channel, status, lawful_basis, source, "
                    "notice_version, ip, user_agent, actor, recorded_at FROM consent_records "
                    "WHERE workspace_id = :ws AND profile_id = ANY(CAST(:ids AS uuid[])) "
                    "ORDER BY recorded_at, id"
                ),
                _params(subject),
            )
        )

    async def erase(self, uow: UnitOfWork, subject: Subject) -> int:
        # The runtime role cannot UPDATE the ledger; this owner function clears
        # only ip and user agent, in the current workspace.
        result = await uow.execute(
            text("SELECT cdp_anonymize_consent_records(CAST(:ids AS uuid[]))"),
            {"ids": array_literal(subject.profile_ids)},
        )
        return int(result.scalar_one())


class ConsentConfirmations:
    table = "consent_confirmations"
    category = "pending double opt-in confirmations, with ip and user agent"
    purpose = "confirming a consent before it counts"
    retention = "until confirmed or expired; erased on request"

    async def export(self, uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
        return _rows(
            await uow.execute(
                text(
                    "SELECT id, profile_id, purpose, channel, lawful_basis, source, "
                    "notice_version, ip, user_agent, requested_at, expires_at, confirmed_at "
                    "FROM consent_confirmations WHERE workspace_id = :ws "
                    "AND profile_id = ANY(CAST(:ids AS uuid[])) ORDER BY requested_at"
                ),
                _params(subject),
            )
        )

    async def erase(self, uow: UnitOfWork, subject: Subject) -> int:
        result = await uow.execute(
            text(
                "DELETE FROM consent_confirmations WHERE workspace_id = :ws "
                "AND profile_id = ANY(CAST(:ids AS uuid[]))"
            ),
            _params(subject),
        )
        return int(result.rowcount or 0)


class Suppressions:
    """Entries hold keyed hashes only; they are exported but never erased."""

    table = "suppressions"
    category = "keyed hashes of suppressed identifiers, with the reason"
    purpose = "not contacting people who unsubscribed, complained, bounced or were erased"
    retention = "permanent: the tombstone that stops an erased person being mailed again"

    async def export(self, uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
        return [
            {**asdict(entry), "reason": entry.reason.value}
            for entry in await suppression.entries(uow, subject.digests)
        ]

    async def erase(self, uow: UnitOfWork, subject: Subject) -> int:
        return 0


def _request_condition() -> str:
    return (
        "workspace_id = :ws AND (profile_id = ANY(CAST(:ids AS uuid[])) "
        "OR identifier_digest = ANY(:digests))"
    )


class DataSubjectRequests:
    table = "data_subject_requests"
    category = "data-subject requests: notes, corrections asked for, and access exports"
    purpose = "answering data-subject requests (GDPR Art. 12-22)"
    retention = (
        "the request record is kept as proof of handling; its note, corrections and "
        "export are erased on request"
    )

    async def export(self, uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
        # Earlier exports are left out: they are copies of what this export holds.
        return _rows(
            await uow.execute(
                text(
                    "SELECT id, type, status, note, corrections, received_at, due_at, "  # noqa: S608 - fixed fragments
                    "extension_reason, completed_at, rejection_reason FROM data_subject_requests "
                    f"WHERE {_request_condition()} ORDER BY id"
                ),
                {**_params(subject), "digests": list(subject.digests)},
            )
        )

    async def erase(self, uow: UnitOfWork, subject: Subject) -> int:
        result = await uow.execute(
            text(
                "UPDATE data_subject_requests SET note = NULL, corrections = NULL, export = NULL "  # noqa: S608 - fixed fragments
                f"WHERE {_request_condition()} "
                "AND (note IS NOT NULL OR corrections IS NOT NULL OR export IS NOT NULL)"
            ),
            {**_params(subject), "digests": list(subject.digests)},
        )
        return int(result.rowcount or 0)


for handler in (ConsentRecords(), ConsentConfirmations(), Suppressions(), DataSubjectRequests()):
    registry.register(handler)
