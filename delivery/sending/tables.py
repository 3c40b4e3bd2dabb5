"""Sending domains and their DKIM keys; campaigns and their deliveries."""

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
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

# `status` is PENDING until the DNS checks (deliverability) pass, then
# VERIFIED, or FAILING when a check that passed fails.
sending_domains = Table(
    "sending_domains",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("domain", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'PENDING'")),
    Column("checks", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("checked_at", TS),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "id"),
    UniqueConstraint("workspace_id", "domain", name="uq_sending_domains_domain"),
    # Mail to the return path names a domain, not a workspace (cdp_inbound_workspaces).
    Index("ix_sending_domains_domain", "domain"),
)

# One key per selector. A rotation adds a selector; the key signs once its
# record is seen in DNS (`published_at`), and the one before it stops then.
dkim_keys = Table(
    "dkim_keys",
    metadata,
    workspace_id_column(),
    Column("domain_id", PG_UUID(as_uuid=True), nullable=False),
    Column("selector", Text, nullable=False),
    Column("algorithm", Text, nullable=False),
    Column("public_key", Text, nullable=False),
    # The PKCS#8 private key, sealed (delivery/sending/sealing.py).
    Column("private_key", LargeBinary, nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("published_at", TS),
    Column("retired_at", TS),
    PrimaryKeyConstraint("workspace_id", "domain_id", "selector"),
    ForeignKeyConstraint(
        ["workspace_id", "domain_id"],
        ["sending_domains.workspace_id", "sending_domains.id"],
        name="fk_dkim_keys_domain",
        ondelete="CASCADE",
    ),
)

# A campaign sends one template version to a segment's members as of the
# moment it starts (the deliveries are that snapshot). A journey's send step
# is a campaign too, with no segment: its deliveries are added one by one as
# enrollments reach the step, and it never finishes while the journey runs.
campaigns = Table(
    "campaigns",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'DRAFT'")),
    Column("segment_id", PG_UUID(as_uuid=True)),  # None for a journey's step
    Column("template_id", PG_UUID(as_uuid=True), nullable=False),
    Column("template_version", Integer),  # fixed when sending starts
    Column("purpose", Text, nullable=False),
    Column("from_email", Text, nullable=False),
    Column("from_name", Text),
    Column("reply_to", Text),
    Column("domain_id", PG_UUID(as_uuid=True), nullable=False),
    # [{"name", "subject", "weight"}]; empty: the template's subject for everyone.
    Column("variants", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("holdout_percent", Float, nullable=False, server_default=text("0")),
    Column("local_time", Boolean, nullable=False, server_default=text("false")),
    Column("scheduled_at", TS),
    Column("started_at", TS),
    Column("finished_at", TS),
    # Why the reputation guard paused it (deliverability), cleared on resume.
    Column("paused_reason", Text),
    Column("journey_id", PG_UUID(as_uuid=True)),
    Column("journey_version", Integer),
    Column("journey_step", Text),
    # A journey's step: when its one delayed batch job wakes, so that the many
    # short jobs the timer queues do not each leave a delayed one behind.
    Column("next_wake_at", TS),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "id"),
    UniqueConstraint("workspace_id", "name", name="uq_campaigns_name"),
    Index(
        "uq_campaigns_journey_step",
        "workspace_id",
        "journey_id",
        "journey_version",
        "journey_step",
        unique=True,
        postgresql_where=text("journey_id IS NOT NULL"),
    ),
)

# One row per (campaign, profile): the audience snapshot and each message's fate.
# A worker claims a batch by setting `lease_until`; a batch whose worker died
# is claimed again once its lease has passed, and only its unsent rows are sent.
deliveries = Table(
    "deliveries",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("campaign_id", PG_UUID(as_uuid=True), nullable=False),
    Column("profile_id", PG_UUID(as_uuid=True), nullable=False, info={PERSONAL_DATA: True}),
    # A journey's delivery: the enrollment that reached the step (one per entry).
    Column("enrollment_id", PG_UUID(as_uuid=True)),
    # What its template sees as `event`: the event that started the journey.
    Column("event", JSONB, info={PERSONAL_DATA: True}),
    Column("variant", Text),
    Column("holdout", Boolean, nullable=False, server_default=text("false")),
    Column("status", Text, nullable=False, server_default=text("'QUEUED'")),
    Column("reason", Text),
    Column("message_id", Text),
    Column("due_at", TS, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("lease_until", TS),
    Column("sent_at", TS),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "id"),
    UniqueConstraint(
        "workspace_id",
        "campaign_id",
        "profile_id",
        "enrollment_id",
        name="uq_deliveries_recipient",
        postgresql_nulls_not_distinct=True,
    ),
    ForeignKeyConstraint(
        ["workspace_id", "campaign_id"],
        ["campaigns.workspace_id", "campaigns.id"],
        name="fk_deliveries_campaign",
        ondelete="CASCADE",
    ),
    # Free to claim, and held by a batch (or by a dead worker's, once the lease passed):
    # a claim reads each without walking past the rows the other batches hold.
    Index(
        "ix_deliveries_due",
        "workspace_id",
        "campaign_id",
        "due_at",
        postgresql_where=text("status IN ('QUEUED', 'DEFERRED') AND lease_until IS NULL"),
    ),
    Index(
        "ix_deliveries_leased",
        "workspace_id",
        "campaign_id",
        "lease_until",
        postgresql_where=text("status IN ('QUEUED', 'DEFERRED') AND lease_until IS NOT NULL"),
    ),
    Index("ix_deliveries_profile", "workspace_id", "profile_id", "sent_at"),
    Index(
        "ix_deliveries_enrollment",
        "workspace_id",
        "enrollment_id",
        postgresql_where=text("enrollment_id IS NOT NULL"),
    ),
)

# A workspace's rules for marketing messages: a frequency cap across campaigns
# (and journeys), quiet hours in the recipient's time zone, the default zone.
send_policies = Table(
    "send_policies",
    metadata,
    workspace_id_column(),
    Column("frequency_cap", Integer),
    Column("frequency_hours", Integer),
    Column("quiet_start", Text),  # "HH:MM", local time
    Column("quiet_end", Text),
    Column("default_timezone", Text, nullable=False, server_default=text("'UTC'")),
    # Messages per second per sending domain, and per recipient domain (throttle.py).
    Column("sending_domain_rate", Float, nullable=False, server_default=text("20")),
    Column("recipient_domain_rate", Float, nullable=False, server_default=text("10")),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    # Whether messages carry an open pixel, and links that record a click (delivery.tracking).
    Column("track_opens", Boolean, nullable=False, server_default=text("true")),
    Column("track_clicks", Boolean, nullable=False, server_default=text("true")),
    PrimaryKeyConstraint("workspace_id"),
)

# The token buckets that throttle sending, shared by every worker: one per
# sending domain ("from:shop.example") and per recipient domain
# ("to:gmail.com"), each refilled at its rate when it is next taken from.
send_buckets = Table(
    "send_buckets",
    metadata,
    workspace_id_column(),
    Column("key", Text, nullable=False),
    Column("tokens", Float, nullable=False),
    Column("refreshed_at", TS, nullable=False),
    PrimaryKeyConstraint("workspace_id", "key"),
)
