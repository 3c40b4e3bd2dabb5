"""Opens and clicks as they arrive, what each message drew, conversions, and the counters.

`tracking_hits` is written by the API at the rate of the requests and read
by the workers, which classify each hit (person or machine) and turn it into
the profile's event and the campaign's counters. `message_stats` holds the
counters by campaign, variant and hour; `message_stats_deltas` holds what
was added since the last roll-up (a trigger on `deliveries` adds the sending
outcomes there, the workers add opens, clicks and conversions), so no writer
waits on another's row lock, and a read sums a few rows of each.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from domain.db import metadata
from domain.personal_data import PERSONAL_DATA
from domain.tenancy import workspace_id_column

TS = DateTime(timezone=True)
PERSONAL = {PERSONAL_DATA: True}
PENDING = text("processed_at IS NULL")
COUNTERS = (
    "recipients", "skipped", "sent", "delivered", "bounced", "complained", "failed",
    "opened", "opens", "machine_opens", "clicked", "clicks", "machine_clicks",
    "converted", "orders", "unsubscribed",
)  # fmt: skip


def _counters() -> list[Column[object]]:
    zero = text("0")
    return [
        *(Column(name, BigInteger, nullable=False, server_default=zero) for name in COUNTERS),
        Column("revenue", Numeric, nullable=False, server_default=zero),
    ]


tracking_hits = Table(
    "tracking_hits",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),  # "open" or "click"
    Column("delivery_id", PG_UUID(as_uuid=True), nullable=False),
    Column("link", Integer, nullable=False, server_default=text("0")),
    Column("url", Text, info=PERSONAL),
    Column("at", TS, nullable=False),
    Column("ip", Text, info=PERSONAL),
    Column("user_agent", Text, info=PERSONAL),
    # Filled when a worker has classified the hit.
    Column("profile_id", PG_UUID(as_uuid=True), info=PERSONAL),
    Column("machine", Boolean),
    Column("reason", Text),
    Column("proxy", Text),
    Column("processed_at", TS),
    PrimaryKeyConstraint("workspace_id", "id"),
    Index("ix_tracking_hits_pending", "workspace_id", "at", postgresql_where=PENDING),
    Index("ix_tracking_hits_done", "at", postgresql_where=text("processed_at IS NOT NULL")),
    Index("ix_tracking_hits_delivery", "workspace_id", "delivery_id", "at"),
    Index("ix_tracking_hits_profile", "workspace_id", "profile_id", "at"),
)

# The sending outcomes that become events on the profile (`Email Delivered`,
# `Email Bounced`), queued by the trigger on `deliveries` (no workspace check,
# as for the deltas below).
message_events = Table(
    "message_events",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("id", BigInteger, Identity(always=True), nullable=False),
    Column("delivery_id", PG_UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),  # "delivered" or "bounced"
    Column("at", TS, nullable=False),
    PrimaryKeyConstraint("workspace_id", "id"),
)

# One row per message that drew an open or a click: the unique counts, and
# the last click that a later order is attributed to.
delivery_engagement = Table(
    "delivery_engagement",
    metadata,
    workspace_id_column(),
    Column("delivery_id", PG_UUID(as_uuid=True), nullable=False),
    Column("campaign_id", PG_UUID(as_uuid=True), nullable=False),
    Column("variant", Text, nullable=False, server_default=text("''")),
    Column("profile_id", PG_UUID(as_uuid=True), nullable=False, info=PERSONAL),
    Column("first_open_at", TS),
    Column("first_click_at", TS),
    Column("last_click_at", TS),
    Column("opens", Integer, nullable=False, server_default=text("0")),
    Column("clicks", Integer, nullable=False, server_default=text("0")),
    Column("machine_opens", Integer, nullable=False, server_default=text("0")),
    Column("machine_clicks", Integer, nullable=False, server_default=text("0")),
    Column("converted_at", TS),
    Column("unsubscribed_at", TS),
    PrimaryKeyConstraint("workspace_id", "delivery_id"),
    Index(
        "ix_delivery_engagement_last_click",
        "workspace_id",
        "profile_id",
        "last_click_at",
        postgresql_where=text("last_click_at IS NOT NULL"),
    ),
)

# An order attributed to the message last clicked before it; `order_id` keeps
# an order from counting twice.
tracking_conversions = Table(
    "tracking_conversions",
    metadata,
    workspace_id_column(),
    Column("order_id", Text, nullable=False, info=PERSONAL),
    Column("profile_id", PG_UUID(as_uuid=True), nullable=False, info=PERSONAL),
    Column("delivery_id", PG_UUID(as_uuid=True), nullable=False),
    Column("campaign_id", PG_UUID(as_uuid=True), nullable=False),
    Column("variant", Text, nullable=False, server_default=text("''")),
    Column("revenue", Numeric, nullable=False),
    Column("at", TS, nullable=False),
    PrimaryKeyConstraint("workspace_id", "order_id"),
    Index("ix_tracking_conversions_profile", "workspace_id", "profile_id"),
)

# New `Order Completed` events, attributed by the tracking job after the
# clicks that came before them are processed.
tracking_orders = Table(
    "tracking_orders",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("event_id", PG_UUID(as_uuid=True), nullable=False),
    Column("at", TS, nullable=False),
    PrimaryKeyConstraint("workspace_id", "event_id"),
)

# One row while a workspace's tracking job is queued, so a burst queues one job.
tracking_requests = Table(
    "tracking_requests",
    metadata,
    workspace_id_column(),
    Column("requested_at", TS, nullable=False, server_default=text("now()")),
    PrimaryKeyConstraint("workspace_id"),
)

message_stats = Table(
    "message_stats",
    metadata,
    workspace_id_column(),
    Column("campaign_id", PG_UUID(as_uuid=True), nullable=False),
    Column("variant", Text, nullable=False),
    Column("bucket", TS, nullable=False),  # the hour
    *_counters(),
    PrimaryKeyConstraint("workspace_id", "campaign_id", "variant", "bucket"),
    Index("ix_message_stats_bucket", "workspace_id", "bucket"),
    ForeignKeyConstraint(
        ["workspace_id", "campaign_id"],
        ["campaigns.workspace_id", "campaigns.id"],
        name="fk_message_stats_campaign",
        ondelete="CASCADE",
    ),
)

# No foreign key to `campaigns` or `workspaces` (nor a workspace check): each
# inserted row would share-lock the referenced rows, and every row comes from a
# delivery or a hit checked already. The roll-up drops the rows of a campaign
# deleted since; a deleted workspace's go with it (migration 0026).
message_stats_deltas = Table(
    "message_stats_deltas",
    metadata,
    workspace_id_column(checked_per_statement=True),
    Column("id", BigInteger, Identity(always=True), nullable=False),
    Column("campaign_id", PG_UUID(as_uuid=True), nullable=False),
    Column("variant", Text, nullable=False),
    Column("bucket", TS, nullable=False),
    *_counters(),
    PrimaryKeyConstraint("workspace_id", "id"),
    Index("ix_message_stats_deltas_campaign", "workspace_id", "campaign_id"),
)
