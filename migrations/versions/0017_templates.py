"""Templates: a name with immutable versions; and the workspace's postal address.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import grant, tenant_rls, workspace_fk

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UUID = pg.UUID(as_uuid=True)
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("postal_address", sa.Text(), nullable=True))
    op.create_table(
        "templates",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("id", _UUID, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", _TS, server_default=sa.text("now()"), nullable=False),
        workspace_fk("templates"),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_templates"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_templates_name"),
    )
    op.create_table(
        "template_versions",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("template_id", _UUID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("preheader", sa.Text(), nullable=True),
        sa.Column("mjml", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("warnings", pg.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("created_at", _TS, server_default=sa.text("now()"), nullable=False),
        workspace_fk("template_versions"),
        sa.ForeignKeyConstraint(
            ["workspace_id", "template_id"],
            ["templates.workspace_id", "templates.id"],
            name="fk_template_versions_template",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "template_id", "version", name="pk_template_versions"
        ),
    )
    for table in ("templates", "template_versions"):
        tenant_rls(table)
    grant("templates", "SELECT, INSERT, UPDATE, DELETE")
    # Versions are immutable: written once, deleted with their template.
    grant("template_versions", "SELECT, INSERT, DELETE")


def downgrade() -> None:
    op.drop_table("template_versions")
    op.drop_table("templates")
    op.drop_column("workspaces", "postal_address")
