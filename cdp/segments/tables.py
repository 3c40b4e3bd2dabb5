"""The segments' tables: definitions, their references, current members and the history."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
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
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from domain.db import metadata
from domain.personal_data import PERSONAL_DATA
from domain.tenancy import workspace_id_column

TS = DateTime(timezone=True)

# `version` grows with each edit of the definition; `computed_version` is the
# version whose full evaluation last finished, so the segment is being
# computed while the two differ.
segments = Table(
    "segments",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("definition", JSONB, nullable=False),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("computed_version", Integer, nullable=False, server_default=text("0")),
    Column("computed_at", TS),
    Column("uses_time", Boolean, nullable=False, server_default=text("false")),
    # The moment the members were last evaluated for (in full or by the sweep):
    # a time-window rule's members change only for the profiles whose values
    # crossed a window's edge since.
    Column("evaluated_at", TS),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "id"),
    UniqueConstraint("workspace_id", "name", name="uq_segments_name"),
)

# What each segment's definition refers to, so that a referenced segment is
# not deleted and a cycle is refused; campaigns and journeys add their own.
segment_references = Table(
    "segment_references",
    metadata,
    workspace_id_column(),
    Column("segment_id", PG_UUID(as_uuid=True), nullable=False),
    Column("referenced_id", PG_UUID(as_uuid=True), nullable=False),
    PrimaryKeyConstraint("workspace_id", "segment_id", "referenced_id"),
    Index("ix_segment_references_referenced", "workspace_id", "referenced_id"),
)

segment_members = Table(
    "segment_members",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("segment_id", PG_UUID(as_uuid=True), nullable=False),
    Column("profile_id", PG_UUID(as_uuid=True), nullable=False, info={PERSONAL_DATA: True}),
    Column("since", TS, nullable=False),
    PrimaryKeyConstraint("workspace_id", "segment_id", "profile_id"),
    Index("ix_segment_members_profile", "workspace_id", "profile_id"),
)

# Append-only: one row per entry or exit. `change_id` names the evaluation
# that made it, and is what the outbox event of that change carries. No
# primary key: a row is unique by construction (an evaluation moves a profile
# once per segment), and a four-uuid key made the history the costlier half
# of writing a new segment's members (bench/README.md, "Segments").
segment_membership_history = Table(
    "segment_membership_history",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("change_id", PG_UUID(as_uuid=True), nullable=False),
    Column("segment_id", PG_UUID(as_uuid=True), nullable=False),
    Column("profile_id", PG_UUID(as_uuid=True), nullable=False, info={PERSONAL_DATA: True}),
    Column("entered", Boolean, nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_segment_membership_history_change", "workspace_id", "change_id"),
    Index("ix_segment_membership_history_profile", "workspace_id", "profile_id", "at"),
)

# Profiles changed since their memberships were last evaluated, with what
# changed (`domain.changes`), written in the transaction of the change; the
# upkeep job claims and deletes them, oldest first. Append-only, a row per
# change listing its profiles: a key per profile would make a change wait for
# the upkeep that holds its row, and a row per profile costs a change (an
# ingest batch) a hundred rows where one will do.
segment_pending = Table(
    "segment_pending",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("id", BigInteger, Identity(always=True), nullable=False),
    # [{"pid": profile id, "reasons": [domain.changes reason, ...]}, ...]
    Column("changes", JSONB, nullable=False),
    Column("profiles", Integer, nullable=False),
    Column("queued_at", TS, nullable=False, server_default=func.now()),
    CheckConstraint("profiles > 0", name="ck_segment_pending_profiles"),
    PrimaryKeyConstraint("workspace_id", "id"),
)

# One row while a workspace's upkeep job is queued, so that a burst of changes
# queues one job, not one per change.
segment_upkeep_requests = Table(
    "segment_upkeep_requests",
    metadata,
    workspace_id_column(),
    Column("requested_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id"),
)
