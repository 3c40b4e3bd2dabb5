"""The statement-level workspace check reads the new rows once, hashing their workspaces.

The check of 0007 counted the distinct workspaces of the new rows (a sort of
every row) and then scanned the rows again to lock those workspaces, a cost
that grew with every row of a bulk call. The workspaces are now gathered in
one hashed pass and locked by key. The locking query's custom plan never
looked cheaper than a generic one to PL/pgSQL's plan cache, so it was planned
afresh on every call; the function now always keeps its generic plans. The
measurements are in bench/README.md ("migration 0011").

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HEAD = """
CREATE OR REPLACE FUNCTION cdp_check_workspaces() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp {settings} AS $$
"""
_REFUSE = """
    IF found < wanted THEN
        RAISE EXCEPTION 'insert into % names a workspace that does not exist',
            TG_TABLE_NAME USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.execute(
        _HEAD.format(settings="SET plan_cache_mode = force_generic_plan")
        + """
DECLARE
    named uuid[];
    wanted bigint;
    found bigint;
BEGIN
    SELECT array_agg(g.workspace_id) INTO named
    FROM (SELECT workspace_id FROM added GROUP BY workspace_id) AS g;
    wanted := coalesce(cardinality(named), 0);
    SELECT count(*) INTO found FROM (
        SELECT 1 FROM workspaces WHERE id = ANY(named) FOR KEY SHARE
    ) AS locked;
"""
        + _REFUSE
    )


def downgrade() -> None:
    op.execute(
        _HEAD.format(settings="")
        + """
DECLARE
    wanted bigint;
    found bigint;
BEGIN
    SELECT count(DISTINCT workspace_id) INTO wanted FROM added;
    SELECT count(*) INTO found FROM (
        SELECT 1 FROM workspaces
        WHERE id IN (SELECT workspace_id FROM added) FOR KEY SHARE
    ) AS locked;
"""
        + _REFUSE
    )
