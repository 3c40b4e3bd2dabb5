"""The audit log's object index matches the query that reads it.

`auditLog(objectId:)` filters on the object id alone, newest first, so an
index led by the object type could not serve it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_audit_log_object", table_name="audit_log")
    op.create_index("ix_audit_log_object_id", "audit_log", ["workspace_id", "object_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_object_id", table_name="audit_log")
    op.create_index(
        "ix_audit_log_object", "audit_log", ["workspace_id", "object_type", "object_id"]
    )
