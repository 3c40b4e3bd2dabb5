"""Exporters and erasers for the CDP's personal data, registered with the kernel."""

from typing import Any

from cdp import repository
from domain.personal_data import Subject, registry
from domain.uow import UnitOfWork


class _Handler:
    table: str
    category: str
    purpose: str
    retention: str
    # The columns that hold a subject's profile ids: a row is the subject's
    # when any of them does.
    subject_columns: tuple[str, ...]
    export_columns: tuple[str, ...]

    async def export(self, uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
        return await repository.subject_rows(
            uow,
            self.table,
            columns=self.export_columns,
            held_in=self.subject_columns,
            workspace_id=subject.workspace_id,
            profile_ids=subject.profile_ids,
        )

    async def erase(self, uow: UnitOfWork, subject: Subject) -> int:
        return await repository.delete_subject_rows(
            uow,
            self.table,
            held_in=self.subject_columns,
            workspace_id=subject.workspace_id,
            profile_ids=subject.profile_ids,
        )


class Profiles(_Handler):
    table = "profiles"
    category = "profile attributes and computed behaviour (traits, purchases, cart)"
    purpose = "personalised messaging"
    retention = "while the person is a contact; erased on request"
    subject_columns = ("id", "merged_into")
    export_columns = (
        "id",
        "merged_into",
        "traits",
        "trait_meta",
        "computed",
        "created_at",
        "updated_at",
    )


class Identities(_Handler):
    table = "identities"
    category = "identifiers (email, phone, user and device ids)"
    purpose = "recognising one person across devices and systems"
    retention = "while the profile exists; erased on request"
    subject_columns = ("profile_id",)
    export_columns = ("kind", "value", "profile_id", "created_at")


class IdentityConflicts(_Handler):
    table = "identity_conflicts"
    category = "identifiers involved in refused merges"
    purpose = "keeping different people apart"
    retention = "while either profile exists; erased on request"
    subject_columns = ("held_by", "claimed_by")
    export_columns = (
        "id",
        "kind",
        "value",
        "held_by",
        "claimed_by",
        "rule",
        "trigger",
        "created_at",
    )


class Events(_Handler):
    table = "events"
    category = "behavioural events with their properties and context (ip, user agent, page)"
    purpose = "behaviour-driven messaging and analytics"
    retention = (
        "the workspace's event retention period (EVENT_RETENTION_DAYS at most); erased on request"
    )
    subject_columns = ("profile_id",)
    export_columns = (
        "id",
        "type",
        "name",
        "timestamp",
        "received_at",
        "message_id",
        "properties",
        "context",
        "profile_id",
    )


class ProfileGroups(_Handler):
    table = "profile_groups"
    category = "the accounts (Segment groups) a person belongs to, with the accounts' traits"
    purpose = "personalised messaging"
    retention = "while the profile exists; erased on request"
    subject_columns = ("profile_id",)
    export_columns = ("profile_id", "group_id", "traits", "trait_meta", "created_at", "updated_at")


class ProfileMerges(_Handler):
    """Merge history holds profile ids only; it goes with the profiles it links."""

    table = "profile_merges"
    category = "merge history (which profiles were found to be one person, and why)"
    purpose = "recognising one person across devices and systems"
    retention = "while the profiles exist; erased on request"
    subject_columns = ("source_profile_id", "target_profile_id")
    export_columns = (
        "id",
        "source_profile_id",
        "target_profile_id",
        "rule",
        "trigger",
        "created_at",
    )


class SegmentMembers(_Handler):
    table = "segment_members"
    category = "the segments a person is in now"
    purpose = "choosing who receives which message"
    retention = "while the profile and the segment exist; erased on request"
    subject_columns = ("profile_id",)
    export_columns = ("segment_id", "profile_id", "since")


class SegmentMembershipHistory(_Handler):
    table = "segment_membership_history"
    category = "when a person entered and left each segment"
    purpose = "explaining and triggering messages on segment changes"
    retention = "while the profile and the segment exist; erased on request"
    subject_columns = ("profile_id",)
    export_columns = ("segment_id", "profile_id", "entered", "at", "change_id")


for handler in (
    Profiles(),
    Identities(),
    IdentityConflicts(),
    Events(),
    ProfileGroups(),
    ProfileMerges(),
    SegmentMembers(),
    SegmentMembershipHistory(),
):
    registry.register(handler)
