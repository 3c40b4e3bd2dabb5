"""A workspace's send policy: frequency cap, quiet hours, default time zone.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import grant, tenant_rls

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "send_policies",
        sa.Column("workspace_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("frequency_cap", sa.Integer(), nullable=True),
        sa.Column("frequency_hours", sa.Integer(), nullable=True),
        sa.Column("quiet_start", sa.Text(), nullable=True),
        sa.Column("quiet_end", sa.Text(), nullable=True),
        sa.Column("default_timezone", sa.Text(), server_default=sa.text("'UTC'"), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_send_policies_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_send_policies"),
    )  # fmt: skip
    tenant_rls("send_policies")
    grant("send_policies", "SELECT, INSERT, UPDATE, DELETE")


def downgrade() -> None:
    op.drop_table("send_policies")
