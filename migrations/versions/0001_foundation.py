"""Foundation: workspaces, credentials, outbox, failed jobs, broker schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from dramatiq_postgres.schema import generate_init_sql
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import app_role, create_app_role, grant, tenant_rls

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
NOW = sa.text("now()")


def _workspace_fk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "workspace_id",
        pg.UUID(as_uuid=True),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE", name=None),
        nullable=False,
    )


def upgrade() -> None:
    create_app_role()
    role = app_role()

    op.create_table(
        "workspaces",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workspaces"),
    )
    op.execute("ALTER TABLE workspaces ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE workspaces FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON workspaces "
        "USING (id = NULLIF(current_setting('cdp.workspace_id', true), '')::uuid) "
        "WITH CHECK (id = NULLIF(current_setting('cdp.workspace_id', true), '')::uuid)"
    )
    grant("workspaces", "SELECT, INSERT, UPDATE")

    op.create_table(
        "api_tokens",
        _workspace_fk(),
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("scopes", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_api_tokens"),
        sa.UniqueConstraint(
            "workspace_id", "token_hash", name="uq_api_tokens_workspace_id_token_hash"
        ),
    )
    op.create_table(
        "write_keys",
        _workspace_fk(),
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_write_keys"),
        sa.UniqueConstraint("workspace_id", "key_hash", name="uq_write_keys_workspace_id_key_hash"),
    )
    op.create_table(
        "oauth_clients",
        _workspace_fk(),
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("scopes", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_oauth_clients"),
        sa.UniqueConstraint(
            "workspace_id", "client_id", name="uq_oauth_clients_workspace_id_client_id"
        ),
    )
    for table in ("api_tokens", "write_keys", "oauth_clients"):
        tenant_rls(table)
        grant(table, "SELECT, INSERT, UPDATE")

    op.create_table(
        "outbox",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=False),
        sa.Column("queue_name", sa.Text(), nullable=False),
        sa.Column("args", pg.JSONB(), nullable=False),
        sa.Column("kwargs", pg.JSONB(), nullable=False),
        sa.Column("options", pg.JSONB(), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index(
        "ix_outbox_unsent", "outbox", ["created_at"], postgresql_where=sa.text("sent_at IS NULL")
    )
    grant("outbox")

    op.create_table(
        "failed_jobs",
        sa.Column("message_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=False),
        sa.Column("queue_name", sa.Text(), nullable=False),
        sa.Column("args", pg.JSONB(), nullable=False),
        sa.Column("kwargs", pg.JSONB(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("failed_at", TS, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_failed_jobs"),
    )
    grant("failed_jobs", "SELECT, INSERT, UPDATE")

    # The default broker's queue lives in this database, in its own schema.
    op.execute(generate_init_sql())
    op.execute(f"GRANT USAGE ON SCHEMA dramatiq TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA dramatiq TO {role}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA dramatiq TO {role}")


def downgrade() -> None:
    role = app_role()
    op.execute("DROP SCHEMA IF EXISTS dramatiq CASCADE")
    op.drop_table("failed_jobs")
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("oauth_clients")
    op.drop_table("write_keys")
    op.drop_table("api_tokens")
    op.drop_table("workspaces")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {role}")
