"""CDP core: profiles, identities, merges, conflicts, events (partitioned), dedup, idempotency.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import CURRENT_WORKSPACE_SQL, app_role, grant, tenant_rls

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
NOW = sa.text("now()")
EMPTY = sa.text("'{}'::jsonb")
UUID = pg.UUID(as_uuid=True)
TABLES = (
    "profiles",
    "identities",
    "profile_merges",
    "identity_conflicts",
    "merge_rules",
    "events",
    "event_message_ids",
    "idempotency_keys",
)


def _ws() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "workspace_id",
        UUID,
        sa.ForeignKey("workspaces.id", ondelete="CASCADE", name=None),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "profiles",
        _ws(),
        sa.Column("id", UUID, nullable=False),
        sa.Column("merged_into", UUID, nullable=True),
        sa.Column("traits", pg.JSONB(), server_default=EMPTY, nullable=False),
        sa.Column("trait_meta", pg.JSONB(), server_default=EMPTY, nullable=False),
        sa.Column("computed", pg.JSONB(), server_default=EMPTY, nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("updated_at", TS, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_profiles"),
    )
    op.create_index(
        "ix_profiles_traits",
        "profiles",
        ["traits"],
        postgresql_using="gin",
        postgresql_ops={"traits": "jsonb_path_ops"},
    )
    op.create_index(
        "ix_profiles_live",
        "profiles",
        ["workspace_id", "id"],
        postgresql_where=sa.text("merged_into IS NULL"),
    )
    op.create_table(
        "identities",
        _ws(),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("profile_id", UUID, nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "kind", "value", name="pk_identities"),
    )
    op.create_index("ix_identities_profile", "identities", ["workspace_id", "profile_id"])
    op.create_table(
        "profile_merges",
        _ws(),
        sa.Column("id", UUID, nullable=False),
        sa.Column("source_profile_id", UUID, nullable=False),
        sa.Column("target_profile_id", UUID, nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_profile_merges"),
    )
    op.create_index(
        "ix_profile_merges_target", "profile_merges", ["workspace_id", "target_profile_id"]
    )
    op.create_index(
        "ix_profile_merges_source", "profile_merges", ["workspace_id", "source_profile_id"]
    )
    op.create_table(
        "identity_conflicts",
        _ws(),
        sa.Column("id", UUID, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("held_by", UUID, nullable=False),
        sa.Column("claimed_by", UUID, nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_identity_conflicts"),
    )
    op.create_index(
        "ix_identity_conflicts_held_by", "identity_conflicts", ["workspace_id", "held_by"]
    )
    op.create_index(
        "ix_identity_conflicts_claimed_by", "identity_conflicts", ["workspace_id", "claimed_by"]
    )
    op.create_table(
        "merge_rules",
        _ws(),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("max_values", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("merge_on_match", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "kind", name="pk_merge_rules"),
    )
    op.create_table(
        "events",
        _ws(),
        sa.Column("id", UUID, nullable=False),
        sa.Column("timestamp", TS, nullable=False),
        sa.Column("profile_id", UUID, nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("properties", pg.JSONB(), nullable=False),
        sa.Column("context", pg.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "id", "timestamp", name="pk_events"),
        postgresql_partition_by="RANGE (timestamp)",
    )
    op.create_index("ix_events_profile_time", "events", ["workspace_id", "profile_id", "timestamp"])
    op.create_table(
        "event_message_ids",
        _ws(),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("received_at", TS, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "message_id", name="pk_event_message_ids"),
    )
    op.create_table(
        "idempotency_keys",
        _ws(),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("response", pg.JSONB(), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "key", name="pk_idempotency_keys"),
    )
    for table in TABLES:
        tenant_rls(table)
        grant(table)

    # Partitions are made on demand by the runtime role, which owns nothing: this
    # function runs as the owner and does only that, with RLS on the new partition.
    current = CURRENT_WORKSPACE_SQL.replace("'", "''")  # inside a quoted literal
    op.execute(
        f"""
        CREATE FUNCTION cdp_ensure_event_partition(month date) RETURNS text
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
            first_day date := date_trunc('month', month)::date;
            part text := format('events_p%s', to_char(first_day, 'YYYYMM'));
        BEGIN
            IF to_regclass(part) IS NOT NULL THEN
                RETURN part;
            END IF;
            PERFORM pg_advisory_xact_lock(hashtext('cdp_event_partition'), hashtext(part));
            IF to_regclass(part) IS NOT NULL THEN
                RETURN part;
            END IF;
            -- A concurrent caller may have made it after this statement's snapshot.
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                    part,
                    (first_day::timestamp AT TIME ZONE 'UTC'),
                    ((first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC')
                );
            EXCEPTION WHEN duplicate_table THEN
                RETURN part;
            END;
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', part);
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', part);
            EXECUTE format(
                'CREATE POLICY tenant_isolation ON %I USING (workspace_id = {current}) '
                'WITH CHECK (workspace_id = {current})',
                part
            );
            RETURN part;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION cdp_ensure_event_partition(date) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION cdp_ensure_event_partition(date) TO {app_role()}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS cdp_ensure_event_partition(date)")
    for table in reversed(TABLES):
        op.drop_table(table)
