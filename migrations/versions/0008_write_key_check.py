"""A write-key check that fails its statement, for use inside a pipeline.

Ingest sends the key check, the claim of message ids, the identifier locks
and the reads in one round trip. A check that only returned no row would let
the rest run for a caller with a bad key; this one raises, and PostgreSQL
then skips everything queued behind it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SECURITY INVOKER: row-level security on write_keys still applies.
    op.execute(
        """
        CREATE FUNCTION cdp_require_write_key(ws uuid, hash bytea) RETURNS void
        LANGUAGE plpgsql SECURITY INVOKER AS $$
        BEGIN
            IF NOT EXISTS (
                SELECT 1 FROM public.write_keys
                WHERE workspace_id = ws AND key_hash = hash AND revoked_at IS NULL
            ) THEN
                RAISE EXCEPTION 'invalid write key'
                    USING ERRCODE = 'invalid_authorization_specification';
            END IF;
        END $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION cdp_require_write_key(uuid, bytea)")
