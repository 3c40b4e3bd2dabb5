"""Journeys: definitions by version, enrollments as timers, the event inbox; journey sends.

- A journey's send step is a campaign with no segment (`campaigns.journey_*`),
  so its messages go through the sending pipeline; a delivery names the
  enrollment it is for, and a profile may get a step's message once per entry.
- `cdp_due_journey_workspaces(now)`: the workspaces with an active journey
  that has an enrollment or a scheduled entry due, for the workers' timer
  across workspaces (row-level security hides other workspaces from the
  runtime role): an index probe per active journey, whatever waits.
- `cdp_stale_journey_inboxes(before)`: the workspaces with events queued for
  journeys before a moment, whose job the timer takes over.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import app_role, grant, tenant_rls, workspace_fk

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = "cdp_due_journey_workspaces(timestamptz)"
STALE = "cdp_stale_journey_inboxes(timestamptz)"
TABLES = (
    "journeys", "journey_versions", "journey_listens", "journey_inbox", "journey_requests",
    "journey_enrollments", "journey_timed", "journey_schedules", "journey_step_counts",
)  # fmt: skip
ANNIVERSARY = "cdp_next_anniversary(text, time, text, timestamptz)"
ACTIVE_WAKE = "state = 'ACTIVE' AND wake_at IS NOT NULL"


def _ts(name: str, *, nullable: bool = True, default: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable,
                     server_default=sa.text("now()") if default else None)  # fmt: skip


def _uuid(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, pg.UUID(as_uuid=True), nullable=nullable)


def _journey_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id", "journey_id"], ["journeys.workspace_id", "journeys.id"],
        name=f"fk_{table}_journey", ondelete="CASCADE",
    )  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "journeys",
        _uuid("workspace_id"), _uuid("id"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'DRAFT'"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        _ts("activated_at"), _ts("created_at", nullable=False, default=True),
        _ts("updated_at", nullable=False, default=True),
        workspace_fk("journeys"),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_journeys"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_journeys_name"),
    )  # fmt: skip
    op.create_table(
        "journey_versions",
        _uuid("workspace_id"), _uuid("journey_id"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", pg.JSONB(), nullable=False),
        _ts("created_at", nullable=False, default=True),
        workspace_fk("journey_versions"), _journey_fk("journey_versions"),
        sa.PrimaryKeyConstraint("workspace_id", "journey_id", "version",
                                name="pk_journey_versions"),
    )  # fmt: skip
    op.create_table(
        "journey_listens",
        _uuid("workspace_id"),
        sa.Column("name", sa.Text(), nullable=False),
        _uuid("journey_id"),
        workspace_fk("journey_listens"), _journey_fk("journey_listens"),
        sa.PrimaryKeyConstraint("workspace_id", "name", "journey_id", name="pk_journey_listens"),
    )  # fmt: skip
    op.create_table(
        "journey_inbox",
        _uuid("workspace_id"),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("event_ids", pg.ARRAY(pg.UUID(as_uuid=True)), nullable=False),
        sa.Column("event_ats", pg.ARRAY(sa.DateTime(timezone=True)), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        _ts("queued_at", nullable=False, default=True),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_journey_inbox"),
    )  # fmt: skip
    # Checked once per statement, as the other tables ingest writes to (migration 0007).
    op.execute(
        "CREATE TRIGGER journey_inbox_workspace_exists AFTER INSERT ON journey_inbox "
        "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
        "EXECUTE FUNCTION cdp_check_workspaces()"
    )
    op.create_table(
        "journey_requests",
        _uuid("workspace_id"), _ts("requested_at", nullable=False, default=True),
        workspace_fk("journey_requests"),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_journey_requests"),
    )  # fmt: skip
    op.create_table(
        "journey_enrollments",
        _uuid("workspace_id"), _uuid("id"), _uuid("journey_id"),
        sa.Column("version", sa.Integer(), nullable=False),
        _uuid("profile_id"),
        sa.Column("state", sa.Text(), server_default=sa.text("'ACTIVE'"), nullable=False),
        sa.Column("step", sa.Text(), nullable=True),
        sa.Column("waiting", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _ts("wake_at"),
        sa.Column("trigger_key", sa.Text(), nullable=True),
        sa.Column("once_key", sa.Text(), nullable=True),
        sa.Column("event", pg.JSONB(), nullable=True),
        _ts("trigger_at", nullable=False), _ts("entered_at", nullable=False),
        _ts("finished_at"),
        sa.Column("exit_reason", sa.Text(), nullable=True),
        _ts("converted_at"), _ts("updated_at", nullable=False, default=True),
        workspace_fk("journey_enrollments"), _journey_fk("journey_enrollments"),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_journey_enrollments"),
        sa.UniqueConstraint("workspace_id", "journey_id", "trigger_key",
                            name="uq_journey_trigger"),
        sa.UniqueConstraint("workspace_id", "journey_id", "profile_id", "once_key",
                            name="uq_journey_reentry"),
    )  # fmt: skip
    op.create_index("ix_journey_enrollments_due", "journey_enrollments",
                    ["workspace_id", "journey_id", "wake_at"],
                    postgresql_where=sa.text(ACTIVE_WAKE))  # fmt: skip
    op.create_index("ix_journey_enrollments_profile", "journey_enrollments",
                    ["workspace_id", "profile_id"])  # fmt: skip
    op.create_index("ix_journey_enrollments_journey", "journey_enrollments",
                    ["workspace_id", "journey_id", "state"])  # fmt: skip
    op.create_table(
        "journey_timed",
        _uuid("workspace_id"), _uuid("journey_id"),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("trait", sa.Text(), nullable=True),
        sa.Column("at_local", sa.Text(), nullable=True),
        sa.Column("days", sa.Integer(), nullable=True),
        workspace_fk("journey_timed"), _journey_fk("journey_timed"),
        sa.PrimaryKeyConstraint("workspace_id", "journey_id", name="pk_journey_timed"),
    )  # fmt: skip
    op.create_table(
        "journey_schedules",
        _uuid("workspace_id"), _uuid("journey_id"), _uuid("profile_id"),
        _ts("due_at", nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "journey_id", "profile_id",
                                name="pk_journey_schedules"),
    )  # fmt: skip
    op.execute(
        "CREATE TRIGGER journey_schedules_workspace_exists AFTER INSERT ON journey_schedules "
        "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
        "EXECUTE FUNCTION cdp_check_workspaces()"
    )
    op.create_index("ix_journey_schedules_due", "journey_schedules",
                    ["workspace_id", "journey_id", "due_at"])  # fmt: skip
    op.create_table(
        "journey_step_counts",
        _uuid("workspace_id"), _uuid("journey_id"),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("entered", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        workspace_fk("journey_step_counts"), _journey_fk("journey_step_counts"),
        sa.PrimaryKeyConstraint("workspace_id", "journey_id", "step",
                                name="pk_journey_step_counts"),
    )  # fmt: skip
    for table in TABLES:
        tenant_rls(table)
        grant(table)
    # The first moment at or after `after` that is the month and day of `value` (an ISO date,
    # or the date part of a timestamp) at `at_local` in `zone`; the 29th of February is kept
    # on the 28th in other years. NULL for a value that is no date. delivery/journeys/timing.py
    # computes the same in Python, and a test holds the two together.
    op.execute(
        f"""
        CREATE FUNCTION {
            ANNIVERSARY.replace(
                "(text, time, text, timestamptz)",
                "(value text, at_local time, zone text, after timestamptz)",
            )
        }
        RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
        DECLARE
            m int; d int; y int; first_day date; last_day int; candidate timestamptz;
        BEGIN
            IF value IS NULL OR value !~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}' THEN RETURN NULL; END IF;
            m := substr(value, 6, 2)::int;
            d := substr(value, 9, 2)::int;
            IF m NOT BETWEEN 1 AND 12 OR d < 1
               OR d > extract(day FROM make_date(2000, m, 1) + interval '1 month - 1 day') THEN
                RETURN NULL;
            END IF;
            y := extract(year FROM after AT TIME ZONE zone)::int;
            FOR k IN 0..2 LOOP
                first_day := make_date(y + k, m, 1);
                last_day := extract(day FROM first_day + interval '1 month - 1 day')::int;
                candidate := make_timestamptz(y + k, m, LEAST(d, last_day),
                    extract(hour FROM at_local)::int, extract(minute FROM at_local)::int, 0, zone);
                -- A time the clocks go back over comes twice: take the first.
                IF (candidate - interval '1 hour') AT TIME ZONE zone
                   = candidate AT TIME ZONE zone THEN
                    candidate := candidate - interval '1 hour';
                END IF;
                IF candidate >= after THEN RETURN candidate; END IF;
            END LOOP;
            RETURN NULL;
        END $$
        """
    )
    op.execute(f"GRANT EXECUTE ON FUNCTION {ANNIVERSARY} TO {app_role()}")
    op.alter_column("campaigns", "segment_id", nullable=True)
    op.add_column("campaigns", _uuid("journey_id", nullable=True))
    op.add_column("campaigns", sa.Column("journey_version", sa.Integer(), nullable=True))
    op.add_column("campaigns", sa.Column("journey_step", sa.Text(), nullable=True))
    op.add_column("campaigns", _ts("next_wake_at"))
    op.create_index(
        "uq_campaigns_journey_step", "campaigns",
        ["workspace_id", "journey_id", "journey_version", "journey_step"], unique=True,
        postgresql_where=sa.text("journey_id IS NOT NULL"),
    )  # fmt: skip
    op.add_column("deliveries", _uuid("enrollment_id", nullable=True))
    op.add_column("deliveries", sa.Column("event", pg.JSONB(), nullable=True))
    op.create_index("ix_deliveries_enrollment", "deliveries", ["workspace_id", "enrollment_id"],
                    postgresql_where=sa.text("enrollment_id IS NOT NULL"))  # fmt: skip
    op.drop_constraint("uq_deliveries_recipient", "deliveries", type_="unique")
    op.execute(
        "ALTER TABLE deliveries ADD CONSTRAINT uq_deliveries_recipient UNIQUE NULLS NOT DISTINCT "
        "(workspace_id, campaign_id, profile_id, enrollment_id)"
    )
    op.execute(
        f"""
        CREATE FUNCTION {FUNCTION.replace("(timestamptz)", "(due timestamptz)")}
        RETURNS TABLE (workspace_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT DISTINCT j.workspace_id FROM journeys j
            WHERE j.status = 'ACTIVE' AND (
                EXISTS (SELECT 1 FROM journey_enrollments e
                        WHERE e.workspace_id = j.workspace_id AND e.journey_id = j.id
                          AND e.state = 'ACTIVE' AND e.wake_at IS NOT NULL AND e.wake_at <= due)
                OR EXISTS (SELECT 1 FROM journey_schedules s
                           WHERE s.workspace_id = j.workspace_id AND s.journey_id = j.id
                             AND s.due_at <= due))
            ORDER BY j.workspace_id
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION cdp_stale_journey_inboxes(before timestamptz)
        RETURNS TABLE (workspace_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT DISTINCT i.workspace_id FROM journey_inbox i WHERE i.queued_at < before
            ORDER BY i.workspace_id
        $$
        """
    )
    for function in (FUNCTION, STALE):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {app_role()}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}")
    op.execute(f"DROP FUNCTION IF EXISTS {STALE}")
    op.execute(f"DROP FUNCTION IF EXISTS {ANNIVERSARY}")
    op.execute("DELETE FROM deliveries WHERE enrollment_id IS NOT NULL")
    op.drop_constraint("uq_deliveries_recipient", "deliveries", type_="unique")
    op.create_unique_constraint("uq_deliveries_recipient", "deliveries",
                                ["workspace_id", "campaign_id", "profile_id"])  # fmt: skip
    op.drop_index("ix_deliveries_enrollment", table_name="deliveries")
    op.drop_column("deliveries", "event")
    op.drop_column("deliveries", "enrollment_id")
    op.drop_index("uq_campaigns_journey_step", table_name="campaigns")
    op.execute("DELETE FROM campaigns WHERE journey_id IS NOT NULL")
    op.drop_column("campaigns", "next_wake_at")
    op.drop_column("campaigns", "journey_step")
    op.drop_column("campaigns", "journey_version")
    op.drop_column("campaigns", "journey_id")
    op.alter_column("campaigns", "segment_id", nullable=False)
    for table in reversed(TABLES):
        op.drop_table(table)
