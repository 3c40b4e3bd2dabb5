"""`cdp_sending_work()`: the campaigns that have deliveries due, across workspaces, for the sweep.

Row-level security hides other workspaces from the runtime role; the worker's
sweep re-queues the batches of campaigns whose jobs were lost with a killed
worker, so an owner function lists only ids.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

from migrations.rls import app_role

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION cdp_sending_work() RETURNS TABLE (workspace_id uuid, campaign_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT c.workspace_id, c.id FROM campaigns c
            WHERE c.status = 'SENDING' AND c.started_at IS NOT NULL
            AND EXISTS (SELECT 1 FROM deliveries d WHERE d.workspace_id = c.workspace_id
                        AND d.campaign_id = c.id AND d.status IN ('QUEUED', 'DEFERRED')
                        AND d.due_at <= now() AND (d.lease_until IS NULL OR d.lease_until < now()))
            ORDER BY c.workspace_id, c.id
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION cdp_sending_work() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION cdp_sending_work() TO {app_role()}")


def downgrade() -> None:
    op.execute("DROP FUNCTION cdp_sending_work()")
