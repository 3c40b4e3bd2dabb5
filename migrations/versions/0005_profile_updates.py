"""Profile updates by primary key, whatever the statistics say.

A batch's profile updates used to be one UPDATE ... FROM over the batch's
rows. With statistics that lag a fast-growing table, or a generic plan that
averages the workspaces, the planner estimated a handful of rows per
workspace and scanned the whole workspace to find a few profiles, at a cost
growing with its size. A loop of single-row updates on the full primary key
has only one plan. The function runs as the caller (SECURITY INVOKER), so
row-level security holds.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

from migrations.rls import app_role

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = "cdp_update_profiles(uuid, jsonb, timestamptz)"


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION cdp_update_profiles(ws uuid, changes jsonb, at timestamptz)
        RETURNS TABLE (id uuid, created_at timestamptz)
        LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
        DECLARE
            change record;
        BEGIN
            FOR change IN
                SELECT * FROM jsonb_to_recordset(changes) AS r(id uuid, t jsonb, m jsonb, c jsonb)
            LOOP
                UPDATE profiles AS p
                SET traits = change.t, trait_meta = change.m, computed = change.c, updated_at = at
                WHERE p.workspace_id = ws AND p.id = change.id
                RETURNING p.id, p.created_at INTO id, created_at;
                IF FOUND THEN
                    RETURN NEXT;
                END IF;
            END LOOP;
        END $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {FUNCTION} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {FUNCTION} TO {app_role()}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}")
