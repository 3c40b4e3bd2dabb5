"""Event retention: drop whole monthly partitions older than a cutoff.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

from migrations.rls import app_role

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Dropping a partition is DDL the runtime role may not run; this function
    # runs as the owner and only drops event partitions wholly before `cutoff`.
    op.execute(
        """
        CREATE FUNCTION cdp_drop_event_partitions_before(cutoff date) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
            part record;
            dropped integer := 0;
        BEGIN
            FOR part IN
                SELECT c.relname
                FROM pg_inherits i
                JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_p[0-9]{6}$'
                ORDER BY c.relname
            LOOP
                IF (to_date(substr(part.relname, 9), 'YYYYMM') + interval '1 month')::date <= cutoff THEN
                    EXECUTE format('DROP TABLE %I', part.relname);
                    dropped := dropped + 1;
                END IF;
            END LOOP;
            RETURN dropped;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION cdp_drop_event_partitions_before(date) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION cdp_drop_event_partitions_before(date) TO {app_role()}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS cdp_drop_event_partitions_before(date)")
