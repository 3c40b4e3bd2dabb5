"""Workspace references on the ingest tables checked once per statement.

A foreign key from `profiles`, `identities`, `events` and `event_message_ids`
to `workspaces` checks and share-locks the one workspace row once per inserted
row. Under concurrent ingest every such lock rewrites the row's multixact, a
large share of PostgreSQL's time per batch (bench/README.md, "migration
0007"). These tables now keep the same guarantees with triggers:
- after each INSERT statement, one query checks and share-locks (FOR KEY SHARE,
  as a foreign key does) every workspace the new rows name, and refuses the
  statement if one is missing;
- `workspace_id` cannot be changed by an UPDATE;
- deleting a workspace deletes its rows in these tables, as ON DELETE CASCADE did.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("profiles", "identities", "events", "event_message_ids")


def upgrade() -> None:
    # SECURITY DEFINER, as a foreign key's own check is: row-level security on
    # `workspaces` must not hide the row that the check looks for.
    op.execute(
        """
        CREATE FUNCTION cdp_check_workspaces() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        DECLARE
            wanted bigint;
            found bigint;
        BEGIN
            SELECT count(DISTINCT workspace_id) INTO wanted FROM added;
            SELECT count(*) INTO found FROM (
                SELECT 1 FROM workspaces
                WHERE id IN (SELECT workspace_id FROM added) FOR KEY SHARE
            ) AS locked;
            IF found < wanted THEN
                RAISE EXCEPTION 'insert into % names a workspace that does not exist',
                    TG_TABLE_NAME USING ERRCODE = 'foreign_key_violation';
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION cdp_refuse_workspace_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'workspace_id of % cannot change', TG_TABLE_NAME
                USING ERRCODE = 'foreign_key_violation';
        END $$
        """
    )
    deletes = "\n".join(f"DELETE FROM {t} WHERE workspace_id = OLD.id;" for t in TABLES)
    op.execute(
        f"""
        CREATE FUNCTION cdp_delete_workspace_rows() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
            {deletes}
            RETURN OLD;
        END $$
        """
    )
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT fk_{table}_workspace_id_workspaces")
        op.execute(
            f"CREATE TRIGGER {table}_workspace_exists AFTER INSERT ON {table} "
            "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
            "EXECUTE FUNCTION cdp_check_workspaces()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_workspace_fixed BEFORE UPDATE ON {table} FOR EACH ROW "
            "WHEN (OLD.workspace_id IS DISTINCT FROM NEW.workspace_id) "
            "EXECUTE FUNCTION cdp_refuse_workspace_change()"
        )
    op.execute(
        "CREATE TRIGGER workspaces_delete_rows AFTER DELETE ON workspaces FOR EACH ROW "
        "EXECUTE FUNCTION cdp_delete_workspace_rows()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER workspaces_delete_rows ON workspaces")
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_workspace_fixed ON {table}")
        op.execute(f"DROP TRIGGER {table}_workspace_exists ON {table}")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_workspace_id_workspaces "
            "FOREIGN KEY (workspace_id) REFERENCES workspaces (id) ON DELETE CASCADE"
        )
    op.execute("DROP FUNCTION cdp_delete_workspace_rows()")
    op.execute("DROP FUNCTION cdp_refuse_workspace_change()")
    op.execute("DROP FUNCTION cdp_check_workspaces()")
