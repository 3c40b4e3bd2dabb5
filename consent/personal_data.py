"""Exporters and erasers for the consent context's personal data."""

from dataclasses import asdict
from typing import Any

from consent import suppression
from consent.repository import confirmations, consent_records, subject_requests
from domain.personal_data import Subject, registry
from domain.uow import UnitOfWork


class ConsentRecords:
    table = "consent_records"
    category = "consent decisions, with the ip and user agent they were given from"
    purpose = "proving consent (GDPR Art. 7(1))"
    retention = (
        "kept as proof for as long as processing relies on it; ip and user agent are "
        "anonymized on erasure (the ledger is append-only)"
    )

    async def export(self, uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
        return await consent_records.export(uow, subject)

    async def erase(self, uow: UnitOfWork, subject: Subject) -> int:
        return await consent_records.anonymize(uow, subject)


class ConsentConfirmations:
    table = "consent_confirmations"
    category = "pending double opt-in confirmations, with ip and user agent"
    purpose = "confirming a consent before it counts"
    retention = "until confirmed or expired; erased on request"

    async def export(self, uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
        return await confirmations.export(uow, subject)

    async def erase(self, uow: UnitOfWork, subject: Subject) -> int:
        return await confirmations.delete_for(uow, subject)


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


class DataSubjectRequests:
    table = "data_subject_requests"
    category = "data-subject requests: notes, corrections asked for, and access exports"
    purpose = "answering data-subject requests (GDPR Art. 12-22)"
    retention = (
        "the request record is kept as proof of handling; its note, corrections and "
        "export are erased on request"
    )

    async def export(self, uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
        return await subject_requests.export_for(uow, subject)

    async def erase(self, uow: UnitOfWork, subject: Subject) -> int:
        return await subject_requests.erase_for(uow, subject)


for handler in (ConsentRecords(), ConsentConfirmations(), Suppressions(), DataSubjectRequests()):
    registry.register(handler)
