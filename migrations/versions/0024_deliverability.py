"""Deliverability: received reports, soft bounces by day, a campaign's pause reason, and lookups.

- `inbound_messages` keeps every bounce, complaint or reply received (raw,
  before processing), with what it was found to be and what was done.
- `cdp_inbound_workspaces(domain)`: the workspaces that send from a domain.
  Mail for the return path arrives before anyone knows its workspace, and
  row-level security hides other workspaces from the runtime role, so an
  owner function answers with ids only, and only for a domain asked by name.
- `cdp_domains_to_check(before)`: the sending domains last checked before a
  moment, for the daily DNS re-check across workspaces.
- `cdp_sending_workspaces()`: the workspaces with a sending domain (the only
  ones that can receive reports), for the retention of received reports.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import app_role, grant, tenant_rls, workspace_fk

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = (
    "cdp_inbound_workspaces(text)",
    "cdp_domains_to_check(timestamptz)",
    "cdp_sending_workspaces()",
)


def _ts(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("workspace_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        _ts("received_at", nullable=False),
        sa.Column("mail_from", sa.Text(), nullable=True),
        sa.Column("rcpt_to", pg.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.Text(), server_default=sa.text("'RECEIVED'"), nullable=False),
        sa.Column("kind", sa.Text(), nullable=True),
        sa.Column("bounce_class", sa.Text(), nullable=True),
        sa.Column("status_code", sa.Text(), nullable=True),
        sa.Column("recipients", pg.ARRAY(sa.Text()), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("diagnostic", sa.Text(), nullable=True),
        sa.Column("delivery_id", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("profile_id", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("processed_at"),
        workspace_fk("inbound_messages"),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_inbound_messages"),
    )  # fmt: skip
    op.create_index(
        "uq_inbound_external", "inbound_messages", ["workspace_id", "source", "external_id"],
        unique=True, postgresql_where=sa.text("external_id IS NOT NULL"),
    )  # fmt: skip
    op.create_index(
        "ix_inbound_messages_pending", "inbound_messages", ["workspace_id", "id"],
        postgresql_where=sa.text("state = 'RECEIVED'"),
    )  # fmt: skip
    op.create_index(
        "ix_inbound_messages_profile", "inbound_messages", ["workspace_id", "profile_id"]
    )
    op.create_table(
        "inbound_requests",
        sa.Column("workspace_id", pg.UUID(as_uuid=True), nullable=False),
        _ts("requested_at", nullable=False),
        workspace_fk("inbound_requests"),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_inbound_requests"),
    )
    op.alter_column("inbound_requests", "requested_at", server_default=sa.text("now()"))
    op.create_table(
        "soft_bounces",
        sa.Column("workspace_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        workspace_fk("soft_bounces"),
        sa.PrimaryKeyConstraint("workspace_id", "digest", "day", name="pk_soft_bounces"),
    )
    for table in ("inbound_messages", "inbound_requests", "soft_bounces"):
        tenant_rls(table)
        grant(table)
    op.add_column("campaigns", sa.Column("paused_reason", sa.Text(), nullable=True))
    op.create_index("ix_sending_domains_domain", "sending_domains", ["domain"])
    op.execute(
        """
        CREATE FUNCTION cdp_inbound_workspaces(name text) RETURNS TABLE (workspace_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT d.workspace_id FROM sending_domains d WHERE d.domain = name
            ORDER BY d.workspace_id
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION cdp_domains_to_check(before timestamptz)
        RETURNS TABLE (workspace_id uuid, domain_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT d.workspace_id, d.id FROM sending_domains d
            WHERE d.checked_at IS NULL OR d.checked_at < before
            ORDER BY d.workspace_id, d.id
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION cdp_sending_workspaces() RETURNS TABLE (workspace_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT DISTINCT d.workspace_id FROM sending_domains d ORDER BY d.workspace_id
        $$
        """
    )
    for function in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {app_role()}")


def downgrade() -> None:
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.drop_index("ix_sending_domains_domain", table_name="sending_domains")
    op.drop_column("campaigns", "paused_reason")
    op.drop_table("soft_bounces")
    op.drop_table("inbound_requests")
    op.drop_table("inbound_messages")
