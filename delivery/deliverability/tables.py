"""Reports received about sent mail (bounces, complaints, replies), and soft bounces by day."""

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from domain.db import metadata
from domain.personal_data import PERSONAL_DATA
from domain.tenancy import workspace_id_column

TS = DateTime(timezone=True)

# Every report, stored before it is processed so that a failure loses
# nothing: a message received over SMTP keeps its raw bytes (until the
# retention sweep empties `raw`), a relay's webhook event its JSON. `state`
# is RECEIVED until the processing job has acted on it, then PROCESSED, or
# FAILED with the error. What it was found to be and what was done are kept
# on the row, so an operator can see why an address was suppressed.
inbound_messages = Table(
    "inbound_messages",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("source", Text, nullable=False),  # "smtp" or "webhook:<provider>"
    # A relay's own id of the event: a webhook delivered twice is stored once.
    Column("external_id", Text),
    Column("received_at", TS, nullable=False),
    Column("mail_from", Text, info={PERSONAL_DATA: True}),
    Column("rcpt_to", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("size", Integer, nullable=False),
    Column("raw", LargeBinary, info={PERSONAL_DATA: True}),
    Column("state", Text, nullable=False, server_default=text("'RECEIVED'")),
    Column("kind", Text),
    Column("bounce_class", Text),
    Column("status_code", Text),
    Column("recipients", ARRAY(Text), info={PERSONAL_DATA: True}),
    Column("message_id", Text),
    Column("diagnostic", Text, info={PERSONAL_DATA: True}),
    Column("delivery_id", PG_UUID(as_uuid=True)),
    Column("profile_id", PG_UUID(as_uuid=True), info={PERSONAL_DATA: True}),
    Column("outcome", Text),
    Column("error", Text),
    Column("processed_at", TS),
    PrimaryKeyConstraint("workspace_id", "id"),
    Index(
        "ix_inbound_messages_pending",
        "workspace_id",
        "id",
        postgresql_where=text("state = 'RECEIVED'"),
    ),
    # Only relays' events have their own ids; mail received over SMTP has none.
    Index(
        "uq_inbound_external",
        "workspace_id",
        "source",
        "external_id",
        unique=True,
        postgresql_where=text("external_id IS NOT NULL"),
    ),
    Index("ix_inbound_messages_profile", "workspace_id", "profile_id"),
)

# One row while a workspace's processing job is queued, so that a burst of
# reports queues one job, not one per report.
inbound_requests = Table(
    "inbound_requests",
    metadata,
    workspace_id_column(),
    Column("requested_at", TS, nullable=False, server_default=text("now()")),
    PrimaryKeyConstraint("workspace_id"),
)

# The days on which an address soft-bounced, by the keyed digest the
# suppression list uses; rows older than the counting window are purged.
soft_bounces = Table(
    "soft_bounces",
    metadata,
    workspace_id_column(),
    Column("digest", LargeBinary, nullable=False),
    Column("day", Date, nullable=False),
    PrimaryKeyConstraint("workspace_id", "digest", "day"),
)
