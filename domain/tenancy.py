"""Tenant table helpers.

Every tenant table leads its primary key and unique keys with
`workspace_id`; migrations enable and force row-level security on it with a
policy that compares the column to the transaction's workspace setting.
"""

from sqlalchemy import Column, ForeignKey
from sqlalchemy.dialects.postgresql import UUID as PG_UUID


def workspace_id_column() -> Column[object]:
    return Column(
        "workspace_id",
        PG_UUID(as_uuid=True),
        ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    )
