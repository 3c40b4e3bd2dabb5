"""The CDP's tables."""

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from domain.db import metadata
from domain.personal_data import PERSONAL_DATA
from domain.tenancy import workspace_id_column

PERSONAL = {PERSONAL_DATA: True}
TS = DateTime(timezone=True)

profiles = Table(
    "profiles",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("merged_into", PG_UUID(as_uuid=True)),
    Column("traits", JSONB, nullable=False, server_default=text("'{}'::jsonb"), info=PERSONAL),
    Column("trait_meta", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("computed", JSONB, nullable=False, server_default=text("'{}'::jsonb"), info=PERSONAL),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    # Set while the person has restricted processing (GDPR Art. 18).
    Column("restricted_at", TS),
    PrimaryKeyConstraint("workspace_id", "id"),
    Index(
        "ix_profiles_traits",
        "traits",
        postgresql_using="gin",
        postgresql_ops={"traits": "jsonb_path_ops"},
    ),
    Index("ix_profiles_live", "workspace_id", "id", postgresql_where=text("merged_into IS NULL")),
    Index(
        "ix_profiles_merged_into",
        "workspace_id",
        "merged_into",
        postgresql_where=text("merged_into IS NOT NULL"),
    ),
)

identities = Table(
    "identities",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("kind", Text, nullable=False),
    Column("value", Text, nullable=False, info=PERSONAL),
    Column("profile_id", PG_UUID(as_uuid=True), nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "kind", "value"),
    Index("ix_identities_profile", "workspace_id", "profile_id"),
)

# The accounts (Segment `group` calls) a profile belongs to, one row per group.
# `trait_meta` holds, per trait, the event time of the call that set it, so an
# older call arriving late cannot overwrite a newer value; `updated_at` is the
# event time of the latest group call for the pair.
profile_groups = Table(
    "profile_groups",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("profile_id", PG_UUID(as_uuid=True), nullable=False),
    Column("group_id", Text, nullable=False, info=PERSONAL),
    Column("traits", JSONB, nullable=False, server_default=text("'{}'::jsonb"), info=PERSONAL),
    Column("trait_meta", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False),
    PrimaryKeyConstraint("workspace_id", "profile_id", "group_id"),
)

profile_merges = Table(
    "profile_merges",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("source_profile_id", PG_UUID(as_uuid=True), nullable=False),
    Column("target_profile_id", PG_UUID(as_uuid=True), nullable=False),
    Column("rule", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "id"),
    Index("ix_profile_merges_target", "workspace_id", "target_profile_id"),
    Index("ix_profile_merges_source", "workspace_id", "source_profile_id"),
)

identity_conflicts = Table(
    "identity_conflicts",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("value", Text, nullable=False, info=PERSONAL),
    Column("held_by", PG_UUID(as_uuid=True), nullable=False),
    Column("claimed_by", PG_UUID(as_uuid=True), nullable=False),
    Column("rule", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "id"),
    Index("ix_identity_conflicts_held_by", "workspace_id", "held_by"),
    Index("ix_identity_conflicts_claimed_by", "workspace_id", "claimed_by"),
)

merge_rules = Table(
    "merge_rules",
    metadata,
    workspace_id_column(),
    Column("kind", Text, nullable=False),
    Column("max_values", Integer),
    Column("priority", Integer, nullable=False),
    Column("merge_on_match", Boolean, nullable=False, server_default=text("true")),
    PrimaryKeyConstraint("workspace_id", "kind"),
)

# Events are partitioned by month of event time; the partitions are made on
# demand by cdp_ensure_event_partition() (see the migration).
events = Table(
    "events",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("timestamp", TS, nullable=False),
    Column("profile_id", PG_UUID(as_uuid=True), nullable=False),
    Column("type", Text, nullable=False),
    Column("name", Text),
    Column("message_id", Text, nullable=False),
    Column("received_at", TS, nullable=False),
    Column("properties", JSONB, nullable=False, info=PERSONAL),
    Column("context", JSONB, nullable=False, info=PERSONAL),
    PrimaryKeyConstraint("workspace_id", "id", "timestamp"),
    Index("ix_events_profile_time", "workspace_id", "profile_id", "timestamp"),
    Index(
        "ix_events_orders",
        "workspace_id",
        "timestamp",
        postgresql_where=text("type = 'track' AND name = 'Order Completed'"),
    ),
    postgresql_partition_by="RANGE (timestamp)",
)

event_message_ids = Table(
    "event_message_ids",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("message_id", Text, nullable=False),
    Column("received_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "message_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    workspace_id_column(),
    Column("key", Text, nullable=False),
    Column("operation", Text, nullable=False),
    Column("request_hash", LargeBinary, nullable=False),
    Column("response", JSONB, nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "key"),
)
