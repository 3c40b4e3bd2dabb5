"""Restriction of processing on profiles (GDPR Art. 18).

`profiles.restricted_at` is set while a RESTRICTION request stands. Ingest
and upserts still store what arrives, but leave traits and computed traits as
they were. A merge carries the restriction to the surviving profile, so the
profile update function now keeps or sets it and never clears it; only
lifting the restriction clears it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _update_function(restriction: bool) -> str:
    keep = (
        ", restricted_at = CASE WHEN change.r THEN coalesce(p.restricted_at, at) "
        "ELSE p.restricted_at END"
        if restriction
        else ""
    )
    columns = (
        "id uuid, t jsonb, m jsonb, c jsonb, r boolean"
        if restriction
        else ("id uuid, t jsonb, m jsonb, c jsonb")
    )
    return f"""
        CREATE OR REPLACE FUNCTION cdp_update_profiles(ws uuid, changes jsonb, at timestamptz)
        RETURNS TABLE (id uuid, created_at timestamptz)
        LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
        DECLARE
            change record;
        BEGIN
            FOR change IN
                SELECT * FROM jsonb_to_recordset(changes) AS r({columns})
            LOOP
                UPDATE profiles AS p
                SET traits = change.t, trait_meta = change.m, computed = change.c,
                    updated_at = at{keep}
                WHERE p.workspace_id = ws AND p.id = change.id
                RETURNING p.id, p.created_at INTO id, created_at;
                IF FOUND THEN
                    RETURN NEXT;
                END IF;
            END LOOP;
        END $$
        """


def upgrade() -> None:
    op.add_column("profiles", sa.Column("restricted_at", sa.DateTime(timezone=True)))
    op.execute(_update_function(restriction=True))


def downgrade() -> None:
    op.execute(_update_function(restriction=False))
    op.drop_column("profiles", "restricted_at")
