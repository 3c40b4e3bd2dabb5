"""Campaigns and their deliveries (one row per recipient: the audience snapshot and its fate).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import grant, tenant_rls, workspace_fk

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UUID = pg.UUID(as_uuid=True)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("id", _UUID, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'DRAFT'"), nullable=False),
        sa.Column("segment_id", _UUID, nullable=False),
        sa.Column("template_id", _UUID, nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("from_email", sa.Text(), nullable=False),
        sa.Column("from_name", sa.Text(), nullable=True),
        sa.Column("reply_to", sa.Text(), nullable=True),
        sa.Column("domain_id", _UUID, nullable=False),
        sa.Column("variants", pg.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("holdout_percent", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("local_time", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("scheduled_at", _TS, nullable=True),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("created_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", _TS, server_default=sa.text("now()"), nullable=False),
        workspace_fk("campaigns"),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_campaigns"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_campaigns_name"),
    )
    op.create_table(
        "deliveries",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("id", _UUID, nullable=False),
        sa.Column("campaign_id", _UUID, nullable=False),
        sa.Column("profile_id", _UUID, nullable=False),
        sa.Column("variant", sa.Text(), nullable=True),
        sa.Column("holdout", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'QUEUED'"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("updated_at", _TS, server_default=sa.text("now()"), nullable=False),
        workspace_fk("deliveries"),
        sa.ForeignKeyConstraint(
            ["workspace_id", "campaign_id"],
            ["campaigns.workspace_id", "campaigns.id"],
            name="fk_deliveries_campaign",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_deliveries"),
        sa.UniqueConstraint(
            "workspace_id", "campaign_id", "profile_id", name="uq_deliveries_recipient"
        ),
    )
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["workspace_id", "campaign_id", "due_at"],
        postgresql_where=sa.text("status IN ('QUEUED', 'DEFERRED')"),
    )
    op.create_index(
        "ix_deliveries_profile", "deliveries", ["workspace_id", "profile_id", "sent_at"]
    )
    for table in ("campaigns", "deliveries"):
        tenant_rls(table)
        grant(table, "SELECT, INSERT, UPDATE, DELETE")


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("campaigns")
