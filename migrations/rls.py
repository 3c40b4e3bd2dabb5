"""Migration helpers for the runtime role, grants, row-level security and tenant keys."""

import sqlalchemy as sa
from alembic import op

CURRENT_WORKSPACE_SQL = "NULLIF(current_setting('cdp.workspace_id', true), '')::uuid"


def app_role() -> str:
    config = op.get_context().config
    role = config.attributes.get("app_role") if config is not None else None
    return str(role or "cdp_app")


def create_app_role() -> None:
    role = app_role()
    # Roles are cluster-wide: another database on the same server may have made it.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                BEGIN
                    CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END;
            END IF;
        END $$;
        """
    )
    op.execute(f"GRANT {role} TO CURRENT_USER")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")


def grant(table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> None:
    op.execute(f"GRANT {privileges} ON {table} TO {app_role()}")


def revoke(table: str) -> None:
    op.execute(f"REVOKE ALL ON {table} FROM {app_role()}")


def tenant_rls(table: str, column: str = "workspace_id") -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({column} = {CURRENT_WORKSPACE_SQL}) "
        f"WITH CHECK ({column} = {CURRENT_WORKSPACE_SQL})"
    )


def workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    """The tenant column's foreign key, named as the models' naming convention names it."""
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=f"fk_{table}_workspace_id_workspaces",
        ondelete="CASCADE",
    )
