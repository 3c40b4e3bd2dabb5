"""The membership history is found by change through a plain index, not a primary key.

The key (workspace, change, segment, profile) took four uuids per row, and
writing it was the costlier half of a new segment's first evaluation; the
history is read by change only to follow a change to the segments that use
the changed one, for which (workspace, change) is enough. Rows are unique
by construction: an evaluation moves a profile at most once per segment.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_segment_membership_history_change",
        "segment_membership_history",
        ["workspace_id", "change_id"],
    )
    op.drop_constraint(
        "pk_segment_membership_history", "segment_membership_history", type_="primary"
    )


def downgrade() -> None:
    op.create_primary_key(
        "pk_segment_membership_history",
        "segment_membership_history",
        ["workspace_id", "change_id", "segment_id", "profile_id"],
    )
    op.drop_index("ix_segment_membership_history_change", "segment_membership_history")
