"""Exporters and erasers for the CDP's personal data, registered with the kernel."""

from typing import Any

from sqlalchemy import text

from domain.personal_data import Subject, registry
from domain.uow import UnitOfWork


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]  # noqa: SLF001 - SQLAlchemy's public row mapping


class _Handler:
    table: str
    category: str
    purpose: str
    retention: str
    subject_condition: str
    export_columns: str

    async def export(self, uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
        result = await uow.execute(
            text(
                f"SELECT {self.export_columns} FROM {self.table} "  # noqa: S608 - class constants
                f"WHERE workspace_id = :ws AND {self.subject_condition}"
            ),
            {"ws": subject.workspace_id, "ids": list(subject.profile_ids)},
        )
        return _rows(result)

    async def erase(self, uow: UnitOfWork, subject: Subject) -> int:
        result = await uow.execute(
            text(
                f"DELETE FROM {self.table} WHERE workspace_id = :ws AND {self.subject_condition}"  # noqa: S608
            ),
            {"ws": subject.workspace_id, "ids": list(subject.profile_ids)},
        )
        return int(result.rowcount or 0)


class Profiles(_Handler):
    table = "profiles"
    category = "profile attributes and computed behaviour (traits, purchases, cart)"
    purpose = "personalised messaging"
    retention = "while the person is a contact; erased on request"
    subject_condition = (
        "(id = ANY(CAST(:ids AS uuid[])) OR merged_into = ANY(CAST(:ids AS uuid[])))"
    )
    export_columns = "id, merged_into, traits, trait_meta, computed, created_at, updated_at"


class Identities(_Handler):
    table = "identities"
    category = "identifiers (email, phone, user and device ids)"
    purpose = "recognising one person across devices and systems"
    retention = "while the profile exists; erased on request"
    subject_condition = "profile_id = ANY(CAST(:ids AS uuid[]))"
    export_columns = "kind, value, profile_id, created_at"


class IdentityConflicts(_Handler):
    table = "identity_conflicts"
    category = "identifiers involved in refused merges"
    purpose = "keeping different people apart"
    retention = "while either profile exists; erased on request"
    subject_condition = (
        "(held_by = ANY(CAST(:ids AS uuid[])) OR claimed_by = ANY(CAST(:ids AS uuid[])))"
    )
    export_columns = "id, kind, value, held_by, claimed_by, rule, trigger, created_at"


class Events(_Handler):
    table = "events"
    category = "behavioural events with their properties and context (ip, user agent, page)"
    purpose = "behaviour-driven messaging and analytics"
    retention = (
        "the workspace's event retention period (EVENT_RETENTION_DAYS at most); erased on request"
    )
    subject_condition = "profile_id = ANY(CAST(:ids AS uuid[]))"
    export_columns = (
        "id, type, name, timestamp, received_at, message_id, properties, context, profile_id"
    )


class ProfileGroups(_Handler):
    table = "profile_groups"
    category = "the accounts (Segment groups) a person belongs to, with the accounts' traits"
    purpose = "personalised messaging"
    retention = "while the profile exists; erased on request"
    subject_condition = "profile_id = ANY(CAST(:ids AS uuid[]))"
    export_columns = "profile_id, group_id, traits, trait_meta, created_at, updated_at"


class ProfileMerges(_Handler):
    """Merge history holds profile ids only; it goes with the profiles it links."""

    table = "profile_merges"
    category = "merge history (which profiles were found to be one person, and why)"
    purpose = "recognising one person across devices and systems"
    retention = "while the profiles exist; erased on request"
    subject_condition = (
        "(source_profile_id = ANY(CAST(:ids AS uuid[])) "
        "OR target_profile_id = ANY(CAST(:ids AS uuid[])))"
    )
    export_columns = "id, source_profile_id, target_profile_id, rule, trigger, created_at"


for handler in (
    Profiles(),
    Identities(),
    IdentityConflicts(),
    Events(),
    ProfileGroups(),
    ProfileMerges(),
):
    registry.register(handler)
