"""Orders get their own index: the popular products read a week of orders, not of events.

`recommendations.popular` runs for every batch of a campaign whose template
shows popular products. Without an index on the event name it read every
event of the workspace in the week, sends' own `Email Delivered` among them,
so each batch of a campaign cost more than the one before (bench/README.md,
"Sending"). The partial index holds `Order Completed` events only, so no
other event pays to keep it.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_events_orders",
        "events",
        ["workspace_id", "timestamp"],
        postgresql_where=sa.text("type = 'track' AND name = 'Order Completed'"),
    )


def downgrade() -> None:
    op.drop_index("ix_events_orders", table_name="events")
