"""Segments: definitions, references, members and the membership history.

The member and history tables take many rows per statement (a full
evaluation writes its whole diff at once), so their workspace reference is
checked once per statement, as the ingest tables' is (migration 0007).

Two functions serve the compiled definitions (cdp/segments/compiler.py):
- `cdp_instant(text)`: the moment an ISO-8601 string names, or NULL; the
  same reading as `cdp.segments.model.parse_instant`, so that SQL and Python
  agree on which strings are dates;
- `cdp_identifier_digest(inner, outer, kind, value)`: the keyed hash of an
  identifier by which suppression entries are found (HMAC-SHA256, with the
  key's inner and outer pads computed by the application, which holds the
  key), so that the contact gate can be evaluated for many profiles in SQL.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.rls import app_role, grant, tenant_rls

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECKED_BEFORE = ("profiles", "identities", "events", "event_message_ids", "profile_groups")
_PER_STATEMENT = ("segment_members", "segment_membership_history", "segment_pending")
_UUID = pg.UUID(as_uuid=True)
_TS = sa.DateTime(timezone=True)
# cdp.segments.model.INSTANT_PATTERN as it was when this migration was written
# (a test keeps the two equal).
INSTANT_PATTERN = (
    r"^([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"(?:[T ]([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9])(?:\.([0-9]{1,6}))?)?"
    r"(Z|([+-])([01][0-9]|2[0-3])(?::?([0-5][0-9]))?)?)?$"
)


def _delete_workspace_rows(tables: Sequence[str]) -> str:
    deletes = "\n".join(f"DELETE FROM {t} WHERE workspace_id = OLD.id;" for t in tables)
    return f"""
        CREATE OR REPLACE FUNCTION cdp_delete_workspace_rows() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
            {deletes}
            RETURN OLD;
        END $$
        """


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=op.f(f"fk_{table}_workspace_id_workspaces"),
        ondelete="CASCADE",
    )


def _tables() -> None:
    op.create_table(
        "segments",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("id", _UUID, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("definition", pg.JSONB(), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("computed_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("computed_at", _TS),
        sa.Column("uses_time", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("evaluated_at", _TS),
        sa.Column("created_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", _TS, server_default=sa.text("now()"), nullable=False),
        _workspace_fk("segments"),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_segments"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_segments_name"),
    )
    op.create_table(
        "segment_references",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("segment_id", _UUID, nullable=False),
        sa.Column("referenced_id", _UUID, nullable=False),
        _workspace_fk("segment_references"),
        sa.PrimaryKeyConstraint(
            "workspace_id", "segment_id", "referenced_id", name="pk_segment_references"
        ),
    )
    op.create_index(
        "ix_segment_references_referenced",
        "segment_references",
        ["workspace_id", "referenced_id"],
    )
    op.create_table(
        "segment_members",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("segment_id", _UUID, nullable=False),
        sa.Column("profile_id", _UUID, nullable=False),
        sa.Column("since", _TS, nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "segment_id", "profile_id", name="pk_segment_members"
        ),
    )
    op.create_index("ix_segment_members_profile", "segment_members", ["workspace_id", "profile_id"])
    op.create_table(
        "segment_membership_history",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("change_id", _UUID, nullable=False),
        sa.Column("segment_id", _UUID, nullable=False),
        sa.Column("profile_id", _UUID, nullable=False),
        sa.Column("entered", sa.Boolean(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id",
            "change_id",
            "segment_id",
            "profile_id",
            name="pk_segment_membership_history",
        ),
    )
    op.create_table(
        "segment_pending",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("id", _UUID, server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("profile_id", _UUID, nullable=False),
        sa.Column("reasons", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("queued_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_segment_pending"),
    )
    op.create_table(
        "segment_upkeep_requests",
        sa.Column("workspace_id", _UUID, nullable=False),
        sa.Column("requested_at", _TS, server_default=sa.text("now()"), nullable=False),
        _workspace_fk("segment_upkeep_requests"),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_segment_upkeep_requests"),
    )
    op.create_index(
        "ix_segment_membership_history_profile",
        "segment_membership_history",
        ["workspace_id", "profile_id", "at"],
    )


def _functions() -> None:
    pattern = INSTANT_PATTERN.replace("'", "''")
    # One expression, no FROM: PostgreSQL can inline it into the statement
    # that calls it. A string the pattern accepts has its date at fixed
    # places, so only the day of the month is checked apart; PostgreSQL's own
    # reading then agrees with `parse_instant`, a zone-less time being UTC.
    op.execute(
        f"""
        CREATE FUNCTION cdp_instant(value text) RETURNS timestamptz
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
            SELECT CASE
                WHEN value !~ '{pattern}' THEN NULL
                WHEN substr(value, 9, 2)::int > extract(day FROM
                        make_date(substr(value, 1, 4)::int, substr(value, 6, 2)::int, 1)
                        + interval '1 month' - interval '1 day') THEN NULL
                WHEN length(value) > 10 AND value ~ '(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$'
                    THEN value::timestamptz
                ELSE value::timestamp AT TIME ZONE 'UTC'
            END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION cdp_identifier_digest(inner_pad bytea, outer_pad bytea, kind text,
                                              value text) RETURNS bytea
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
            SELECT sha256(outer_pad || sha256(inner_pad || convert_to(kind, 'UTF8')
                                              || '\\x00'::bytea || convert_to(value, 'UTF8')))
        $$
        """
    )
    # The worker's catch-up looks across workspaces, which row-level security
    # hides from the runtime role: an owner function lists only ids.
    op.execute(
        """
        CREATE FUNCTION cdp_segment_work() RETURNS TABLE (workspace_id uuid, timed boolean)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT workspace_id, bool_or(timed) FROM (
                SELECT workspace_id, false AS timed FROM segment_pending
                UNION ALL SELECT workspace_id, false FROM segment_upkeep_requests
                UNION ALL SELECT workspace_id, uses_time FROM segments WHERE uses_time
            ) AS w GROUP BY workspace_id ORDER BY workspace_id
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION cdp_segment_work() FROM PUBLIC")
    for signature in (
        "cdp_instant(text)",
        "cdp_identifier_digest(bytea, bytea, text, text)",
        "cdp_segment_work()",
    ):
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {app_role()}")


def upgrade() -> None:
    _tables()
    for table in ("segments", "segment_references", "segment_upkeep_requests", *_PER_STATEMENT):
        tenant_rls(table)
    # UPDATE for the claim's FOR UPDATE SKIP LOCKED; rows are never changed.
    grant("segment_pending", "SELECT, INSERT, UPDATE, DELETE")
    # UPDATE for the share lock a change takes on a queued request (FOR KEY SHARE).
    grant("segment_upkeep_requests", "SELECT, INSERT, UPDATE, DELETE")
    grant("segments", "SELECT, INSERT, UPDATE, DELETE")
    grant("segment_references", "SELECT, INSERT, DELETE")
    grant("segment_members", "SELECT, INSERT, DELETE")
    # Append-only, except that erasure and a deleted segment take their rows.
    grant("segment_membership_history", "SELECT, INSERT, DELETE")
    for table in _PER_STATEMENT:
        op.execute(
            f"CREATE TRIGGER {table}_workspace_exists AFTER INSERT ON {table} "
            "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
            "EXECUTE FUNCTION cdp_check_workspaces()"
        )
    op.execute(_delete_workspace_rows((*_CHECKED_BEFORE, *_PER_STATEMENT)))
    _functions()


def downgrade() -> None:
    op.execute("DROP FUNCTION cdp_segment_work()")
    op.execute("DROP FUNCTION cdp_identifier_digest(bytea, bytea, text, text)")
    op.execute("DROP FUNCTION cdp_instant(text)")
    op.execute(_delete_workspace_rows(_CHECKED_BEFORE))
    for table in (
        "segment_upkeep_requests",
        "segment_pending",
        "segment_membership_history",
        "segment_members",
        "segment_references",
    ):
        op.drop_table(table)
    op.drop_table("segments")
