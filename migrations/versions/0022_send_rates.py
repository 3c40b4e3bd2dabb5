"""Throttling: messages-per-second limits in the send policy, and the shared token buckets.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import grant, tenant_rls, workspace_fk

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("send_policies", sa.Column("sending_domain_rate", sa.Float(),
                                             server_default=sa.text("20"), nullable=False))  # fmt: skip
    op.add_column("send_policies", sa.Column("recipient_domain_rate", sa.Float(),
                                             server_default=sa.text("10"), nullable=False))  # fmt: skip
    op.create_table(
        "send_buckets",
        sa.Column("workspace_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        workspace_fk("send_buckets"),
        sa.PrimaryKeyConstraint("workspace_id", "key", name="pk_send_buckets"),
    )
    tenant_rls("send_buckets")
    grant("send_buckets", "SELECT, INSERT, UPDATE, DELETE")


def downgrade() -> None:
    op.drop_table("send_buckets")
    op.drop_column("send_policies", "recipient_domain_rate")
    op.drop_column("send_policies", "sending_domain_rate")
