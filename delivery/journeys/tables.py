"""The journeys' tables: definitions by version, enrollments (the timers), and the event inbox."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from domain.db import metadata
from domain.personal_data import PERSONAL_DATA
from domain.tenancy import workspace_id_column

TS = DateTime(timezone=True)
PERSONAL = {PERSONAL_DATA: True}

# `version` is the newest version's number: new entries take it, and each
# enrollment keeps the one it entered with.
journeys = Table(
    "journeys",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'DRAFT'")),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("activated_at", TS),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "id"),
    UniqueConstraint("workspace_id", "name", name="uq_journeys_name"),
)

journey_versions = Table(
    "journey_versions",
    metadata,
    workspace_id_column(),
    Column("journey_id", PG_UUID(as_uuid=True), nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", JSONB, nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "journey_id", "version"),
    ForeignKeyConstraint(
        ["workspace_id", "journey_id"],
        ["journeys.workspace_id", "journeys.id"],
        name="fk_journey_versions_journey",
        ondelete="CASCADE",
    ),
)

# The event names that journeys not in DRAFT or ARCHIVED listen for (trigger,
# exits, waits, goal), so that ingest queues only the events one of them reads.
journey_listens = Table(
    "journey_listens",
    metadata,
    workspace_id_column(),
    Column("name", Text, nullable=False),
    Column("journey_id", PG_UUID(as_uuid=True), nullable=False),
    PrimaryKeyConstraint("workspace_id", "name", "journey_id"),
    ForeignKeyConstraint(
        ["workspace_id", "journey_id"],
        ["journeys.workspace_id", "journeys.id"],
        name="fk_journey_listens_journey",
        ondelete="CASCADE",
    ),
)

# Events a journey listens for, queued in the transaction that stored them,
# a row per transaction; the journeys' job claims and deletes them in order.
journey_inbox = Table(
    "journey_inbox",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("id", BigInteger, Identity(always=True), nullable=False),
    Column("event_ids", ARRAY(PG_UUID(as_uuid=True)), nullable=False),
    Column("event_ats", ARRAY(TS), nullable=False),
    Column("events", Integer, nullable=False),
    Column("queued_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "id"),
)

# One row while a workspace's inbox job is queued, so a burst queues one job.
journey_requests = Table(
    "journey_requests",
    metadata,
    workspace_id_column(),
    Column("requested_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id"),
)

# One row per (journey, profile, entry). A waiting enrollment is a timer:
# `wake_at` is when a worker next moves it, found through the partial indexes,
# so nothing about it costs anything until then. `step` is where it is, and
# `waiting` says that the step has begun (a wait counting, a waitFor
# listening). `trigger_key` (the trigger's message id) enrols an event once;
# `once_key` holds the re-entry rule: "once" for never, "active" while
# enrolled for after_exit (cleared when the enrollment ends), NULL for always.
journey_enrollments = Table(
    "journey_enrollments",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("journey_id", PG_UUID(as_uuid=True), nullable=False),
    Column("version", Integer, nullable=False),
    Column("profile_id", PG_UUID(as_uuid=True), nullable=False, info=PERSONAL),
    Column("state", Text, nullable=False, server_default=text("'ACTIVE'")),
    Column("step", Text),
    Column("waiting", Boolean, nullable=False, server_default=text("false")),
    Column("wake_at", TS),
    Column("trigger_key", Text),
    Column("once_key", Text),
    # The triggering event as templates see it: {"name", "properties", "timestamp"}.
    Column("event", JSONB, info=PERSONAL),
    Column("trigger_at", TS, nullable=False),
    Column("entered_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("exit_reason", Text),
    Column("converted_at", TS),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "id"),
    ForeignKeyConstraint(
        ["workspace_id", "journey_id"],
        ["journeys.workspace_id", "journeys.id"],
        name="fk_journey_enrollments_journey",
        ondelete="CASCADE",
    ),
    UniqueConstraint("workspace_id", "journey_id", "trigger_key", name="uq_journey_trigger"),
    UniqueConstraint(
        "workspace_id", "journey_id", "profile_id", "once_key", name="uq_journey_reentry"
    ),
    Index(
        "ix_journey_enrollments_due",
        "workspace_id",
        "journey_id",
        "wake_at",
        postgresql_where=text("state = 'ACTIVE' AND wake_at IS NOT NULL"),
    ),
    Index("ix_journey_enrollments_profile", "workspace_id", "profile_id"),
    Index("ix_journey_enrollments_journey", "workspace_id", "journey_id", "state"),
)

# The date and inactivity triggers of active and paused journeys, which the
# ingest path reads to keep `journey_schedules` current.
journey_timed = Table(
    "journey_timed",
    metadata,
    workspace_id_column(),
    Column("journey_id", PG_UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),  # "date" or "inactive"
    Column("trait", Text),  # date: the trait holding the date
    Column("at_local", Text),  # date: "HH:MM" in the profile's zone
    Column("days", Integer),  # inactive: days without an event
    PrimaryKeyConstraint("workspace_id", "journey_id"),
    ForeignKeyConstraint(
        ["workspace_id", "journey_id"],
        ["journeys.workspace_id", "journeys.id"],
        name="fk_journey_timed_journey",
        ondelete="CASCADE",
    ),
)

# When each profile next enters a date or inactivity journey: the next
# anniversary of its date trait, or N days after its last event. Kept by
# the change that moves it (a trait, an event), and read by the timer
# through the partial index, so no sweep reads every profile.
journey_schedules = Table(
    "journey_schedules",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("journey_id", PG_UUID(as_uuid=True), nullable=False),
    Column("profile_id", PG_UUID(as_uuid=True), nullable=False, info=PERSONAL),
    Column("due_at", TS, nullable=False),
    PrimaryKeyConstraint("workspace_id", "journey_id", "profile_id"),
    Index("ix_journey_schedules_due", "workspace_id", "journey_id", "due_at"),
)

# How many enrollments reached each step (any version: steps keep their ids),
# added to by each timer batch; who is there now and who left there are read
# from the enrollments.
journey_step_counts = Table(
    "journey_step_counts",
    metadata,
    workspace_id_column(),
    Column("journey_id", PG_UUID(as_uuid=True), nullable=False),
    Column("step", Text, nullable=False),
    Column("entered", BigInteger, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("workspace_id", "journey_id", "step"),
    ForeignKeyConstraint(
        ["workspace_id", "journey_id"],
        ["journeys.workspace_id", "journeys.id"],
        name="fk_journey_step_counts_journey",
        ondelete="CASCADE",
    ),
)
