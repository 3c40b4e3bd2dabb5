"""The accounts a profile belongs to: Segment `group` calls, one row per profile and group.

Ingest writes this table in the same statement as the rest of a batch, so it
takes the workspace check once per statement, as the other ingest tables do
(migration 0007), and deleting a workspace deletes its rows.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import grant, tenant_rls

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "profile_groups"
# The tables whose rows go with their workspace: 0007's, then this one.
_CHECKED = ("profiles", "identities", "events", "event_message_ids")


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


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("workspace_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("profile_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("group_id", sa.Text(), nullable=False),
        sa.Column("traits", pg.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("trait_meta", pg.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "profile_id", "group_id", name="pk_profile_groups"),
    )
    tenant_rls(TABLE)
    # UPDATE for merging a later call's traits, DELETE for merges and erasure.
    grant(TABLE, "SELECT, INSERT, UPDATE, DELETE")
    op.execute(
        f"CREATE TRIGGER {TABLE}_workspace_exists AFTER INSERT ON {TABLE} "
        "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
        "EXECUTE FUNCTION cdp_check_workspaces()"
    )
    op.execute(
        f"CREATE TRIGGER {TABLE}_workspace_fixed BEFORE UPDATE ON {TABLE} FOR EACH ROW "
        "WHEN (OLD.workspace_id IS DISTINCT FROM NEW.workspace_id) "
        "EXECUTE FUNCTION cdp_refuse_workspace_change()"
    )
    op.execute(_delete_workspace_rows((*_CHECKED, TABLE)))


def downgrade() -> None:
    op.execute(_delete_workspace_rows(_CHECKED))
    op.drop_table(TABLE)
