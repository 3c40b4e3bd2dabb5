"""Exporters and erasers for delivery's personal data, registered with the kernel."""

from typing import Any

from cdp import repository
from domain.personal_data import Subject, registry
from domain.uow import UnitOfWork


class HeldByProfile:
    """Rows that name the profile in `profile_id`: exported as `_columns`, erased whole."""

    table: str
    _columns: tuple[str, ...]

    async def export(self, uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
        return await repository.subject_rows(
            uow, self.table, columns=self._columns, held_in=("profile_id",),
            workspace_id=subject.workspace_id, profile_ids=subject.profile_ids,
        )  # fmt: skip

    async def erase(self, uow: UnitOfWork, subject: Subject) -> int:
        return await repository.delete_subject_rows(
            uow, self.table, held_in=("profile_id",),
            workspace_id=subject.workspace_id, profile_ids=subject.profile_ids,
        )  # fmt: skip


class Deliveries(HeldByProfile):
    table = "deliveries"
    category = "the messages sent or meant for a person, and what became of each"
    purpose = "sending campaigns and journeys, and proving what was sent"
    retention = "while the campaign exists; erased on request"
    _columns = ("campaign_id", "enrollment_id", "variant", "holdout", "status", "reason",
                "message_id", "sent_at", "event")  # fmt: skip


class JourneyEnrollments(HeldByProfile):
    table = "journey_enrollments"
    category = (
        "the journeys a person entered, where they are in each, and the event that started it"
    )
    purpose = "sending a journey's messages at their time, and counting its conversions"
    retention = "while the journey exists; erased on request"
    _columns = ("journey_id", "version", "state", "step", "wake_at", "event", "entered_at",
                "finished_at", "exit_reason", "converted_at")  # fmt: skip


class JourneySchedules(HeldByProfile):
    table = "journey_schedules"
    category = "when a person next enters a birthday or inactivity journey"
    purpose = "entering people in date and inactivity journeys at their time"
    retention = "while the journey is active; erased on request"
    _columns = ("journey_id", "due_at")


registry.register(Deliveries())
registry.register(JourneyEnrollments())
registry.register(JourneySchedules())


class InboundReports:
    table = "inbound_messages"
    category = "bounces, complaints and replies received about messages sent to a person"
    purpose = "suppressing addresses that bounce or complain, and proving why"
    retention = (
        "the raw message for INBOUND_RETENTION_DAYS, what it said while the workspace exists"
    )
    _columns = ("received_at", "source", "mail_from", "kind", "bounce_class", "status_code",
                "recipients", "diagnostic", "outcome", "delivery_id", "raw")  # fmt: skip

    async def export(self, uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
        rows = await repository.subject_rows(
            uow, self.table, columns=self._columns, held_in=("profile_id",),
            workspace_id=subject.workspace_id, profile_ids=subject.profile_ids,
        )  # fmt: skip
        for row in rows:
            raw = row.pop("raw")
            row["raw"] = bytes(raw).decode("utf-8", errors="replace") if raw is not None else None
        return rows

    async def erase(self, uow: UnitOfWork, subject: Subject) -> int:
        return await repository.delete_subject_rows(
            uow, self.table, held_in=("profile_id",),
            workspace_id=subject.workspace_id, profile_ids=subject.profile_ids,
        )  # fmt: skip


registry.register(InboundReports())
