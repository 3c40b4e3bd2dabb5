"""The trigger on `deliveries` counts a message leaving for the relay without its general query.

Most status moves are a queued (or deferred) message becoming SENT. For that
move the counters change by one `sent` and one `delivered` in the hour it
left, and one `Email Delivered` is queued. That move now writes its two rows
directly, without the general statement of 0026 (three rows unioned, grouped,
then two inserts), which cost more than the update itself (bench/README.md,
"Sending"); every other move still goes through the general statement.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_tracking = importlib.import_module("migrations.versions.0026_tracking")

# What the general statement gives for this move: the row at the hour the status moved
# is all zeros unless the message was skipped, bounced, complained of or failed before.
_FAST = """
    IF OLD.sent_at IS NULL AND NEW.sent_at IS NOT NULL AND NEW.status = 'SENT'
       AND OLD.status NOT IN ('SKIPPED', 'BOUNCED', 'COMPLAINED', 'FAILED') THEN
        INSERT INTO message_stats_deltas (workspace_id, campaign_id, variant, bucket,
            recipients, skipped, sent, delivered, bounced, complained, failed)
        VALUES (NEW.workspace_id, NEW.campaign_id, coalesce(NEW.variant, ''),
                date_trunc('hour', NEW.sent_at, 'UTC'), 0, 0, 1, 1, 0, 0, 0);
        INSERT INTO message_events (workspace_id, delivery_id, kind, at)
        VALUES (NEW.workspace_id, NEW.id, 'delivered', NEW.sent_at);
        RETURN NULL;
    END IF;
"""


def _update_function(fast: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION cdp_delivery_stats_update() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            {fast}
            {_tracking.stats_body(_tracking.MOVED_BY_UPDATE)}
            RETURN NULL;
        END $$
    """


def upgrade() -> None:
    op.execute(_update_function(_FAST))


def downgrade() -> None:
    op.execute(_update_function(""))
