"""Tenant table helpers.

Every tenant table leads its primary key and unique keys with
`workspace_id`; migrations enable and force row-level security on it with a
policy that compares the column to the transaction's workspace setting.
"""

from sqlalchemy import Column, ForeignKey
from sqlalchemy.dialects.postgresql import UUID as PG_UUID


def workspace_id_column(*, checked_per_statement: bool = False) -> Column[object]:
    """The tenant column, a foreign key to `workspaces`.

    `checked_per_statement` is for the few tables that ingest writes hundreds of
    rows into per request. A foreign key checks and share-locks the same
    workspace row once per row, and with concurrent writers every one of those
    locks rewrites a multixact; a trigger (migration 0007) does the same check
    and lock once per statement, and deleting a workspace still cascades.
    """
    if checked_per_statement:
        return Column("workspace_id", PG_UUID(as_uuid=True), nullable=False)
    return Column(
        "workspace_id",
        PG_UUID(as_uuid=True),
        ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    )
