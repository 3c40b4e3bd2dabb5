"""Tracking: opens and clicks, engagement per message, conversions, and message counters.

- `cdp_delivery_stats_insert()` / `_update()`: triggers on `deliveries` add
  the sending outcomes to `message_stats_deltas` (by campaign, variant and
  hour; an insert per statement, an update per row whose status or sent_at
  moved) and queue `Email Delivered` / `Email Bounced` profile events in
  `message_events`, so no status change anywhere escapes the counts.
- `cdp_tracking_workspaces()`: the workspaces with hits, message events or
  orders to process or counters to roll up, for the workers' sweep.
- `cdp_prune_tracking_hits(before, max_rows)`: processed hits (their addresses
  and browsers) deleted past their keeping time, across workspaces.
- `send_policies.track_opens` / `track_clicks`: a workspace can turn either off.
- `cdp_delete_workspace_rows()` also clears the tables checked per statement
  since 0014 (the journey inbox among them), which no foreign key cascades.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import app_role, grant, tenant_rls, workspace_fk

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = (
    "recipients", "skipped", "sent", "delivered", "bounced", "complained", "failed",
    "opened", "opens", "machine_opens", "clicked", "clicks", "machine_clicks",
    "converted", "orders", "unsubscribed",
)  # fmt: skip
TABLES = (
    "tracking_hits", "message_events", "delivery_engagement", "tracking_conversions",
    "tracking_orders", "tracking_requests", "message_stats", "message_stats_deltas",
)  # fmt: skip
# Written from requests (a token names the workspace): checked once per statement.
PER_STATEMENT = ("tracking_hits", "tracking_orders")
# No foreign key to `workspaces` (a share lock per row): cleared when a workspace goes.
UNREFERENCED = (*PER_STATEMENT, "message_events", "message_stats_deltas")
# Every table whose workspace is checked per statement, with no cascading foreign key.
_CHECKED = (
    "profiles", "identities", "events", "event_message_ids", "profile_groups",
    "segment_members", "segment_membership_history", "segment_pending", "journey_inbox",
    "journey_schedules",
)  # fmt: skip
WORKSPACES = "cdp_tracking_workspaces()"
PRUNE = "cdp_prune_tracking_hits(timestamptz, integer)"


def _ts(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _uuid(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, pg.UUID(as_uuid=True), nullable=nullable)


def _counters() -> list[sa.Column]:
    zero = sa.text("0")
    return [
        *(sa.Column(n, sa.BigInteger(), server_default=zero, nullable=False) for n in COUNTERS),
        sa.Column("revenue", sa.Numeric(), server_default=zero, nullable=False),
    ]


def _delete_workspace_rows(tables: Sequence[str]) -> str:
    deletes = "\n".join(f"DELETE FROM {t} WHERE workspace_id = OLD.id;" for t in tables)
    return f"""
        CREATE OR REPLACE FUNCTION cdp_delete_workspace_rows() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
            {deletes}
            RETURN OLD;
        END $$
        """


def _tables() -> None:
    op.create_table(
        "tracking_hits",
        _uuid("workspace_id"), _uuid("id"), sa.Column("kind", sa.Text(), nullable=False),
        _uuid("delivery_id"),
        sa.Column("link", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("url", sa.Text()), _ts("at", nullable=False), sa.Column("ip", sa.Text()),
        sa.Column("user_agent", sa.Text()), _uuid("profile_id", nullable=True),
        sa.Column("machine", sa.Boolean()), sa.Column("reason", sa.Text()),
        sa.Column("proxy", sa.Text()), _ts("processed_at"),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_tracking_hits"),
    )  # fmt: skip
    op.create_index("ix_tracking_hits_pending", "tracking_hits", ["workspace_id", "at"],
                    postgresql_where=sa.text("processed_at IS NULL"))  # fmt: skip
    op.create_index("ix_tracking_hits_delivery", "tracking_hits",
                    ["workspace_id", "delivery_id", "at"])  # fmt: skip
    op.create_index("ix_tracking_hits_done", "tracking_hits", ["at"],
                    postgresql_where=sa.text("processed_at IS NOT NULL"))  # fmt: skip
    op.create_index("ix_tracking_hits_profile", "tracking_hits",
                    ["workspace_id", "profile_id", "at"])  # fmt: skip
    op.create_table(
        "message_events",
        _uuid("workspace_id"),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        _uuid("delivery_id"), sa.Column("kind", sa.Text(), nullable=False),
        _ts("at", nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_message_events"),
    )  # fmt: skip
    op.create_table(
        "delivery_engagement",
        _uuid("workspace_id"), _uuid("delivery_id"), _uuid("campaign_id"),
        sa.Column("variant", sa.Text(), server_default=sa.text("''"), nullable=False),
        _uuid("profile_id"), _ts("first_open_at"), _ts("first_click_at"), _ts("last_click_at"),
        *(sa.Column(n, sa.Integer(), server_default=sa.text("0"), nullable=False)
          for n in ("opens", "clicks", "machine_opens", "machine_clicks")),
        _ts("converted_at"), _ts("unsubscribed_at"),
        workspace_fk("delivery_engagement"),
        sa.PrimaryKeyConstraint("workspace_id", "delivery_id", name="pk_delivery_engagement"),
    )  # fmt: skip
    op.create_index("ix_delivery_engagement_last_click", "delivery_engagement",
                    ["workspace_id", "profile_id", "last_click_at"],
                    postgresql_where=sa.text("last_click_at IS NOT NULL"))  # fmt: skip
    op.create_table(
        "tracking_conversions",
        _uuid("workspace_id"), sa.Column("order_id", sa.Text(), nullable=False),
        _uuid("profile_id"), _uuid("delivery_id"), _uuid("campaign_id"),
        sa.Column("variant", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("revenue", sa.Numeric(), nullable=False), _ts("at", nullable=False),
        workspace_fk("tracking_conversions"),
        sa.PrimaryKeyConstraint("workspace_id", "order_id", name="pk_tracking_conversions"),
    )  # fmt: skip
    op.create_index("ix_tracking_conversions_profile", "tracking_conversions",
                    ["workspace_id", "profile_id"])  # fmt: skip
    op.create_table(
        "tracking_orders",
        _uuid("workspace_id"), _uuid("event_id"), _ts("at", nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "event_id", name="pk_tracking_orders"),
    )  # fmt: skip
    op.create_table(
        "tracking_requests",
        _uuid("workspace_id"),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        workspace_fk("tracking_requests"),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_tracking_requests"),
    )  # fmt: skip
    op.create_table(
        "message_stats",
        _uuid("workspace_id"), _uuid("campaign_id"), sa.Column("variant", sa.Text(), nullable=False),
        _ts("bucket", nullable=False), *_counters(),
        workspace_fk("message_stats"),
        sa.ForeignKeyConstraint(["workspace_id", "campaign_id"],
                                ["campaigns.workspace_id", "campaigns.id"],
                                name="fk_message_stats_campaign", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "campaign_id", "variant", "bucket",
                                name="pk_message_stats"),
    )  # fmt: skip
    op.create_index("ix_message_stats_bucket", "message_stats", ["workspace_id", "bucket"])
    op.create_table(
        "message_stats_deltas",
        _uuid("workspace_id"),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        _uuid("campaign_id"), sa.Column("variant", sa.Text(), nullable=False),
        _ts("bucket", nullable=False), *_counters(),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_message_stats_deltas"),
    )  # fmt: skip
    op.create_index("ix_message_stats_deltas_campaign", "message_stats_deltas",
                    ["workspace_id", "campaign_id"])  # fmt: skip


# A statement's moved deliveries: before (o_*) and after (n_*), and whether each is new.
# An update is counted row by row, and only where the status or sent_at moved:
# the claims and lease renewals of the send path (most updates) cost a
# comparison each, where a statement trigger built their transition tables.
MOVED_BY_UPDATE = """
    SELECT NEW.workspace_id AS workspace_id, NEW.id AS id, NEW.campaign_id AS campaign_id,
           coalesce(NEW.variant, '') AS variant, 0 AS r, NEW.status AS n_status,
           NEW.sent_at AS n_sent, NEW.updated_at AS n_at, OLD.status AS o_status,
           OLD.sent_at AS o_sent
"""
_MOVED_BY_INSERT = """
    SELECT n.workspace_id, n.id, n.campaign_id, coalesce(n.variant, '') AS variant, 1 AS r,
           n.status AS n_status, n.sent_at AS n_sent, n.updated_at AS n_at,
           NULL::text AS o_status, NULL::timestamptz AS o_sent
    FROM added n
"""


def _was(status: str) -> str:
    return f"(n_status = '{status}')::int - coalesce(o_status = '{status}', false)::int"


# Sending outcomes as counter deltas by campaign, variant and hour: `sent` and
# `delivered` belong to the hour the message left (a later bounce takes
# `delivered` back from that hour), the other outcomes to the hour they
# happened. Then the outcomes that become events on the profile.
def stats_body(moved: str) -> str:
    return f"""
    WITH moved AS ({moved}),
    counted AS (
        INSERT INTO message_stats_deltas (workspace_id, campaign_id, variant, bucket, recipients,
            skipped, sent, delivered, bounced, complained, failed)
        SELECT workspace_id, campaign_id, variant, bucket, sum(r), sum(sk), sum(se), sum(de),
               sum(bo), sum(co), sum(fa)
        FROM (
            SELECT workspace_id, campaign_id, variant, date_trunc('hour', n_sent, 'UTC') AS bucket,
                   0 AS r, 0 AS sk, 1 AS se, (n_status <> 'BOUNCED')::int AS de,
                   0 AS bo, 0 AS co, 0 AS fa
            FROM moved WHERE n_sent IS NOT NULL
            UNION ALL
            SELECT workspace_id, campaign_id, variant, date_trunc('hour', o_sent, 'UTC'),
                   0, 0, -1, -((o_status <> 'BOUNCED')::int), 0, 0, 0
            FROM moved WHERE o_sent IS NOT NULL
            UNION ALL
            SELECT workspace_id, campaign_id, variant, date_trunc('hour', n_at, 'UTC'), r,
                   {_was("SKIPPED")}, 0, 0, {_was("BOUNCED")}, {_was("COMPLAINED")},
                   {_was("FAILED")}
            FROM moved
        ) c
        GROUP BY workspace_id, campaign_id, variant, bucket
        HAVING sum(r) <> 0 OR sum(sk) <> 0 OR sum(se) <> 0 OR sum(de) <> 0 OR sum(bo) <> 0
            OR sum(co) <> 0 OR sum(fa) <> 0
    )
    INSERT INTO message_events (workspace_id, delivery_id, kind, at)
    SELECT workspace_id, id,
           CASE WHEN n_status = 'BOUNCED' THEN 'bounced' ELSE 'delivered' END,
           CASE WHEN n_status = 'BOUNCED' THEN n_at ELSE n_sent END
    FROM moved
    WHERE (n_sent IS NOT NULL AND o_sent IS NULL AND n_status <> 'BOUNCED')
       OR (n_status = 'BOUNCED' AND o_status IS DISTINCT FROM 'BOUNCED');
    """


def _trigger_functions() -> None:
    for name, moved in (
        ("cdp_delivery_stats_insert", _MOVED_BY_INSERT),
        ("cdp_delivery_stats_update", MOVED_BY_UPDATE),
    ):
        op.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                {stats_body(moved)}
                RETURN NULL;
            END $$
            """
        )
    op.execute(
        "CREATE TRIGGER deliveries_stats_insert AFTER INSERT ON deliveries "
        "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
        "EXECUTE FUNCTION cdp_delivery_stats_insert()"
    )
    op.execute(
        "CREATE TRIGGER deliveries_stats_update AFTER UPDATE OF status, sent_at ON deliveries "
        "FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status "
        " OR OLD.sent_at IS DISTINCT FROM NEW.sent_at) "
        "EXECUTE FUNCTION cdp_delivery_stats_update()"
    )


# The campaigns sent before this migration, counted from their deliveries as they stand.
_BACKFILL = """
    INSERT INTO message_stats (workspace_id, campaign_id, variant, bucket, recipients, skipped,
        sent, delivered, bounced, complained, failed)
    SELECT workspace_id, campaign_id, coalesce(variant, ''),
           date_trunc('hour', coalesce(sent_at, updated_at), 'UTC'), count(*),
           count(*) FILTER (WHERE status = 'SKIPPED'), count(sent_at),
           count(sent_at) FILTER (WHERE status <> 'BOUNCED'),
           count(*) FILTER (WHERE status = 'BOUNCED'), count(*) FILTER (WHERE status = 'COMPLAINED'),
           count(*) FILTER (WHERE status = 'FAILED')
    FROM deliveries GROUP BY 1, 2, 3, 4
"""


def upgrade() -> None:
    _tables()
    for table in TABLES:
        tenant_rls(table)
        grant(table)
    for table in PER_STATEMENT:
        op.execute(
            f"CREATE TRIGGER {table}_workspace_exists AFTER INSERT ON {table} "
            "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
            "EXECUTE FUNCTION cdp_check_workspaces()"
        )
    op.execute(_delete_workspace_rows((*_CHECKED, *UNREFERENCED)))
    _trigger_functions()
    op.execute(_BACKFILL)
    op.add_column("send_policies", sa.Column("track_opens", sa.Boolean(),
                                             server_default=sa.text("true"), nullable=False))  # fmt: skip
    op.add_column("send_policies", sa.Column("track_clicks", sa.Boolean(),
                                             server_default=sa.text("true"), nullable=False))  # fmt: skip
    op.execute(
        """
        CREATE FUNCTION cdp_tracking_workspaces()
        RETURNS TABLE (workspace_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT h.workspace_id FROM tracking_hits h WHERE h.processed_at IS NULL
            UNION SELECT e.workspace_id FROM message_events e
            UNION SELECT o.workspace_id FROM tracking_orders o
            UNION SELECT d.workspace_id FROM message_stats_deltas d
            ORDER BY 1
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION cdp_prune_tracking_hits(before timestamptz, max_rows integer)
        RETURNS bigint
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            WITH old AS (SELECT workspace_id, id FROM tracking_hits
                         WHERE processed_at IS NOT NULL AND at < before LIMIT max_rows),
            gone AS (DELETE FROM tracking_hits h USING old
                     WHERE h.workspace_id = old.workspace_id AND h.id = old.id RETURNING 1)
            SELECT count(*) FROM gone
        $$
        """
    )
    for function in (WORKSPACES, PRUNE):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {app_role()}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {WORKSPACES}")
    op.execute(f"DROP FUNCTION IF EXISTS {PRUNE}")
    op.drop_column("send_policies", "track_clicks")
    op.drop_column("send_policies", "track_opens")
    op.execute("DROP TRIGGER deliveries_stats_update ON deliveries")
    op.execute("DROP TRIGGER deliveries_stats_insert ON deliveries")
    op.execute("DROP FUNCTION cdp_delivery_stats_update()")
    op.execute("DROP FUNCTION cdp_delivery_stats_insert()")
    op.execute(_delete_workspace_rows(_CHECKED[:-2]))
    for table in reversed(TABLES):
        op.drop_table(table)
