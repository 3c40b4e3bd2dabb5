"""Profiles leave a fifth of each page free, so that an update can stay on its page.

Nearly every event updates its profile's computed traits, and most leave the
traits themselves as they were. With room on the page PostgreSQL then writes
the new version there (a heap-only update) and touches none of the profile
indexes, the GIN index on the traits among them. Pages already full get the
room as they are rewritten.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE profiles SET (fillfactor = 80)")


def downgrade() -> None:
    op.execute("ALTER TABLE profiles RESET (fillfactor)")
