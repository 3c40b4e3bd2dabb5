"""Sending domains and their DKIM keys (private keys sealed with a key derived from SECRET_KEY).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import grant, tenant_rls, workspace_fk

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UUID = pg.UUID(as_uuid=True)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sending_domains",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("id", _UUID, nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'PENDING'"), nullable=False),
        sa.Column("checks", pg.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("checked_at", _TS, nullable=True),
        sa.Column("created_at", _TS, server_default=sa.text("now()"), nullable=False),
        workspace_fk("sending_domains"),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_sending_domains"),
        sa.UniqueConstraint("workspace_id", "domain", name="uq_sending_domains_domain"),
    )
    op.create_table(
        "dkim_keys",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("domain_id", _UUID, nullable=False),
        sa.Column("selector", sa.Text(), nullable=False),
        sa.Column("algorithm", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("published_at", _TS, nullable=True),
        sa.Column("retired_at", _TS, nullable=True),
        workspace_fk("dkim_keys"),
        sa.ForeignKeyConstraint(
            ["workspace_id", "domain_id"],
            ["sending_domains.workspace_id", "sending_domains.id"],
            name="fk_dkim_keys_domain",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "domain_id", "selector", name="pk_dkim_keys"),
    )
    for table in ("sending_domains", "dkim_keys"):
        tenant_rls(table)
        grant(table, "SELECT, INSERT, UPDATE, DELETE")


def downgrade() -> None:
    op.drop_table("dkim_keys")
    op.drop_table("sending_domains")
