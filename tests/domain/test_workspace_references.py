"""The ingest tables keep a foreign key's guarantees without one (migrations 0007, 0011)."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest

from domain.db import libpq_url, with_role
from tests.conftest import new_workspace
from tests.support.database import APP_ROLE
from tests.support.factories import (
    event,
    event_message_ids,
    event_partitions,
    identity,
    profile,
    seeding,
)

# Raw SQL: a plain one-row INSERT of each table is what the workspace check must refuse.
INSERTS = {
    "profiles": "INSERT INTO profiles (workspace_id, id) VALUES (%(ws)s, gen_random_uuid())",
    "identities": (
        "INSERT INTO identities (workspace_id, kind, value, profile_id) "
        "VALUES (%(ws)s, 'email', 'a@example.com', gen_random_uuid())"
    ),
    "events": (
        "INSERT INTO events (workspace_id, id, timestamp, profile_id, type, message_id, "
        "received_at, properties, context) VALUES (%(ws)s, gen_random_uuid(), %(at)s, "
        "gen_random_uuid(), 'track', 'm-1', %(at)s, '{}', '{}')"
    ),
    "event_message_ids": (
        "INSERT INTO event_message_ids (workspace_id, message_id) VALUES (%(ws)s, 'm-1')"
    ),
}
# One row of each of those tables in a workspace, as test data.
SEEDS: dict[str, Callable[[psycopg.Connection, uuid.UUID], object]] = {
    "profiles": profile,
    "identities": lambda conn, ws: identity(conn, ws, uuid.uuid4()),
    "events": lambda conn, ws: event(conn, ws, uuid.uuid4()),
    "event_message_ids": lambda conn, ws: event_message_ids(conn, ws, ["m-1"]),
}


def _as_app(database_url: str, workspace_id: uuid.UUID) -> psycopg.Connection:
    conn = psycopg.connect(with_role(database_url, APP_ROLE))
    conn.execute("SELECT set_config('cdp.workspace_id', %s, false)", (str(workspace_id),))
    return conn


def _ensure_partition(database_url: str) -> None:
    with seeding(database_url) as conn:
        event_partitions(conn, [datetime.now(UTC).date()])


@pytest.mark.parametrize("table", sorted(INSERTS))
def test_a_row_naming_no_workspace_is_refused(database_url, table):
    _ensure_partition(database_url)
    missing = uuid.uuid4()
    with _as_app(database_url, missing) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(INSERTS[table], {"ws": missing, "at": datetime.now(UTC)})


@pytest.mark.parametrize("table", sorted(SEEDS))
def test_workspace_id_cannot_change(database_url, table):
    first = new_workspace(database_url, "first").workspace.id
    second = new_workspace(database_url, "second").workspace.id
    with seeding(database_url) as conn:  # the owner: no RLS in the way
        SEEDS[table](conn, first)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                f"UPDATE {table} SET workspace_id = %s WHERE workspace_id = %s",
                (second, first),
            )


def test_deleting_a_workspace_deletes_its_rows_and_only_its_rows(database_url):
    doomed = new_workspace(database_url, "doomed").workspace.id
    kept = new_workspace(database_url, "kept").workspace.id
    with seeding(database_url) as conn:
        for ws in (doomed, kept):
            for seed in SEEDS.values():
                seed(conn, ws)
        conn.execute("DELETE FROM workspaces WHERE id = %s", (doomed,))
        for table in SEEDS:
            left = conn.execute(
                f"SELECT workspace_id, count(*) FROM {table} "
                "WHERE workspace_id = ANY(%s) GROUP BY 1",
                ([doomed, kept],),
            ).fetchall()
            assert left == [(kept, 1)], table


def test_rows_of_an_existing_workspace_go_in_in_bulk(database_url):
    ws = new_workspace(database_url, "bulk").workspace.id
    with _as_app(database_url, ws) as conn:
        # Raw SQL: one many-row statement through the per-statement check is the subject.
        conn.execute(
            "INSERT INTO event_message_ids (workspace_id, message_id) "
            "SELECT %s, 'bulk-' || g FROM generate_series(1, 500) AS g",
            (ws,),
        )
        count = conn.execute("SELECT count(*) FROM event_message_ids").fetchone()
    assert count == (500,)


def test_one_missing_workspace_among_many_rows_refuses_the_statement(database_url):
    """As the owner (no row-level security): rows of a real workspace and of a missing one."""
    ws = new_workspace(database_url, "mixed").workspace.id
    with psycopg.connect(libpq_url(database_url)) as conn:
        # Raw SQL: one many-row statement through the per-statement check is the subject.
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "INSERT INTO event_message_ids (workspace_id, message_id) "
                "SELECT CASE WHEN g = 250 THEN gen_random_uuid() ELSE %s END, 'mixed-' || g "
                "FROM generate_series(1, 500) AS g",
                (ws,),
            )
        conn.rollback()
        count = conn.execute(
            "SELECT count(*) FROM event_message_ids WHERE message_id LIKE 'mixed-%%'"
        ).fetchone()
    assert count == (0,)
