"""Deliveries to send are indexed in two parts: the free ones, and those a batch holds.

The one index of unsent deliveries held the rows a batch had claimed too: a
claim walked past every row the other batches held (thousands while a
campaign sends, all due at the same time), reading each from the table to
see its lease, before it found a free one (bench/README.md, "Sending"). A
claim now reads the free rows from `ix_deliveries_due`, which a row leaves
when a batch takes it, and the rows of a dead worker's batch from
`ix_deliveries_leased`, by how long ago their lease passed.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNSENT = "status IN ('QUEUED', 'DEFERRED')"


def _sending_work(held: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION cdp_sending_work() RETURNS TABLE (workspace_id uuid, campaign_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT c.workspace_id, c.id FROM campaigns c
            WHERE c.status = 'SENDING' AND c.started_at IS NOT NULL
            AND {held}
            ORDER BY c.workspace_id, c.id
        $$
    """


_EXISTS = (
    "EXISTS (SELECT 1 FROM deliveries d WHERE d.workspace_id = c.workspace_id "
    "AND d.campaign_id = c.id AND d.status IN ('QUEUED', 'DEFERRED') AND d.due_at <= now() AND {})"
)


def upgrade() -> None:
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["workspace_id", "campaign_id", "due_at"],
        postgresql_where=sa.text(f"{_UNSENT} AND lease_until IS NULL"),
    )
    op.create_index(
        "ix_deliveries_leased",
        "deliveries",
        ["workspace_id", "campaign_id", "lease_until"],
        postgresql_where=sa.text(f"{_UNSENT} AND lease_until IS NOT NULL"),
    )
    op.execute(
        _sending_work(
            f"({_EXISTS.format('d.lease_until IS NULL')} "
            f"OR {_EXISTS.format('d.lease_until IS NOT NULL AND d.lease_until < now()')})"
        )
    )


def downgrade() -> None:
    op.execute(_sending_work(_EXISTS.format("(d.lease_until IS NULL OR d.lease_until < now())")))
    op.drop_index("ix_deliveries_leased", table_name="deliveries")
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["workspace_id", "campaign_id", "due_at"],
        postgresql_where=sa.text(_UNSENT),
    )
