"""`cdp_segment_workspaces()`: the workspaces that have segments, for jobs that span them.

Dropping a month of events (the server-wide retention) changes every
workspace's all-time event counts; the job that drops them re-evaluates the
segments that count events so old, in each workspace that has segments.
Row-level security hides other workspaces from the runtime role, so an
owner function lists only the ids.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

from migrations.rls import app_role

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION cdp_segment_workspaces() RETURNS TABLE (workspace_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT DISTINCT s.workspace_id FROM segments s ORDER BY s.workspace_id
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION cdp_segment_workspaces() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION cdp_segment_workspaces() TO {app_role()}")


def downgrade() -> None:
    op.execute("DROP FUNCTION cdp_segment_workspaces()")
