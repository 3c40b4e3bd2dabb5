"""Segment upkeep queues a row per change, not a row per profile.

A change (an ingest batch, a consent record) used to queue a row for each
profile it touched; it now queues one row that lists them, with their
reasons, and their number. Ingest of a batch of 100 events wrote 100 queue
rows and the upkeep deleted as many; it now writes one. The id is a
sequence, so that the upkeep takes the oldest changes first.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import grant, tenant_rls

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UUID = pg.UUID(as_uuid=True)
_TS = sa.DateTime(timezone=True)


def _secure(table: str) -> None:
    tenant_rls(table)
    # UPDATE for the claim's FOR UPDATE SKIP LOCKED; rows are never changed.
    grant(table, "SELECT, INSERT, UPDATE, DELETE")
    op.execute(
        f"CREATE TRIGGER {table}_workspace_exists AFTER INSERT ON {table} "
        "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
        "EXECUTE FUNCTION cdp_check_workspaces()"
    )


def upgrade() -> None:
    op.execute("ALTER TABLE segment_pending RENAME TO segment_pending_rows")
    op.execute(
        "ALTER TABLE segment_pending_rows RENAME CONSTRAINT pk_segment_pending "
        "TO pk_segment_pending_rows"
    )
    op.create_table(
        "segment_pending",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("changes", pg.JSONB(), nullable=False),
        sa.Column("profiles", sa.Integer(), nullable=False),
        sa.Column("queued_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("profiles > 0", name="ck_segment_pending_profiles"),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_segment_pending"),
    )
    _secure("segment_pending")
    op.execute(
        "INSERT INTO segment_pending (workspace_id, changes, profiles, queued_at) "
        "SELECT workspace_id, jsonb_agg(jsonb_build_object('pid', profile_id, 'reasons', reasons)), "
        "count(*), min(queued_at) FROM segment_pending_rows GROUP BY workspace_id"
    )
    op.drop_table("segment_pending_rows")


def downgrade() -> None:
    op.execute("ALTER TABLE segment_pending RENAME TO segment_pending_changes")
    op.execute(
        "ALTER TABLE segment_pending_changes RENAME CONSTRAINT pk_segment_pending "
        "TO pk_segment_pending_changes"
    )
    op.create_table(
        "segment_pending",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("id", _UUID, server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("profile_id", _UUID, nullable=False),
        sa.Column("reasons", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("queued_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_segment_pending"),
    )
    _secure("segment_pending")
    op.execute(
        "INSERT INTO segment_pending (workspace_id, profile_id, reasons, queued_at) "
        "SELECT c.workspace_id, (x ->> 'pid')::uuid, "
        "ARRAY(SELECT jsonb_array_elements_text(x -> 'reasons')), c.queued_at "
        "FROM segment_pending_changes c CROSS JOIN LATERAL jsonb_array_elements(c.changes) x"
    )
    op.drop_table("segment_pending_changes")
