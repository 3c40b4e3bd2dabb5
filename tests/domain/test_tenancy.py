"""Row-level security is the second wall between workspaces."""

import psycopg
import pytest

from domain.db import with_role
from tests.support.database import APP_ROLE
from tests.support.factories import event, profile, seeding

TENANT_TABLES = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public'
  AND EXISTS (SELECT 1 FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attname = 'workspace_id' AND NOT a.attisdropped)
ORDER BY 1
"""


def test_rls_is_forced_on_every_table_with_workspace_id(database_url):
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(TENANT_TABLES).fetchall()
        workspaces = conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = 'workspaces'"
        ).fetchone()
    assert len(rows) >= 3
    not_forced = [name for name, enabled, forced in rows if not (enabled and forced)]
    assert not_forced == []
    assert workspaces == (True, True)


def test_workspace_id_leads_every_primary_and_unique_key(database_url):
    query = """
    SELECT c.relname, con.conname, (SELECT attname FROM pg_attribute
                                     WHERE attrelid = c.oid AND attnum = con.conkey[1])
    FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND con.contype IN ('p', 'u')
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace_id')
    """
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(query).fetchall()
    assert rows
    assert [r for r in rows if r[2] != "workspace_id"] == []


def test_runtime_role_owns_nothing_and_cannot_bypass_rls(database_url):
    with psycopg.connect(database_url) as conn:
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", (APP_ROLE,)
        ).fetchone()
        owned = conn.execute(
            "SELECT tablename FROM pg_tables WHERE tableowner = %s", (APP_ROLE,)
        ).fetchall()
    assert role == (False, False)
    assert owned == []


def test_runtime_role_without_workspace_sees_no_rows(database_url, workspace, other_workspace):
    with seeding(database_url) as conn:
        for ws in (workspace.workspace.id, other_workspace.workspace.id):
            event(conn, ws, profile(conn, ws, identifiers=[("user_id", str(ws))]))
    with psycopg.connect(database_url) as conn:
        # Partitions are read through their parent; the runtime role has no grant on them.
        tables = [
            r[0]
            for r in conn.execute(TENANT_TABLES).fetchall()
            if conn.execute(
                "SELECT has_table_privilege(%s, %s, 'SELECT')", (APP_ROLE, r[0])
            ).fetchone()[0]
        ] + ["workspaces"]
        owner_counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    seeded = ("api_tokens", "profiles", "identities", "events")
    assert [t for t in seeded if owner_counts[t] < 2] == []
    assert {"profiles", "identities", "events"} <= set(tables)
    with psycopg.connect(with_role(database_url, APP_ROLE)) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == APP_ROLE
        conn.execute("RESET ROLE")
        assert conn.execute("SELECT current_user").fetchone()[0] == APP_ROLE
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    assert counts == dict.fromkeys(tables, 0)


def test_runtime_role_sees_only_the_selected_workspace(database_url, workspace, other_workspace):
    with psycopg.connect(with_role(database_url, APP_ROLE)) as conn:
        conn.execute(
            "SELECT set_config('cdp.workspace_id', %s, true)", (str(workspace.workspace.id),)
        )
        seen = {r[0] for r in conn.execute("SELECT DISTINCT workspace_id FROM api_tokens")}
        names = [r[0] for r in conn.execute("SELECT name FROM workspaces")]
    assert seen == {workspace.workspace.id}
    assert names == ["alpha"]


def test_runtime_role_cannot_write_into_another_workspace(database_url, workspace, other_workspace):
    with psycopg.connect(with_role(database_url, APP_ROLE)) as conn:
        conn.execute(
            "SELECT set_config('cdp.workspace_id', %s, true)", (str(workspace.workspace.id),)
        )
        # Raw SQL: this INSERT is what row-level security must refuse.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO write_keys (workspace_id, id, name, key_hash) "
                "VALUES (%s, gen_random_uuid(), 'x', '\\x00')",
                (other_workspace.workspace.id,),
            )
