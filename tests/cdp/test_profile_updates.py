"""An event's update of a profile stays on the profile's page (migration 0012)."""

import json
import uuid

import psycopg

from domain.db import WORKSPACE_SETTING, libpq_url

PROFILES = 2000
UPDATED = 200


def test_updating_computed_traits_is_heap_only(database_url, workspace):
    ws = workspace.workspace.id
    ids = [uuid.uuid4() for _ in range(PROFILES)]
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute("SELECT set_config(%s, %s, true)", (WORKSPACE_SETTING, str(ws)))
        with conn.cursor().copy("COPY profiles (workspace_id, id, traits) FROM STDIN") as copy:
            for i, profile_id in enumerate(ids):
                copy.write_row((ws, profile_id, json.dumps({"email": f"p{i}@example.com"})))
        # The traits as they were, computed traits new: what a track event writes.
        changes = [
            {"id": str(p), "t": {"email": f"p{i}@example.com"}, "m": {}, "c": {"n": i}, "r": False}
            for i, p in enumerate(ids)
            if i % (PROFILES // UPDATED) == 0
        ]
        conn.execute(
            "SELECT count(*) FROM cdp_update_profiles(%s, %s::jsonb, now())",
            (ws, json.dumps(changes)),
        )
        updated, heap_only = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'profiles'"
        ).fetchone()
    assert updated == UPDATED
    # Every page has room for its share of the updates; full pages would take
    # next to none of them.
    assert heap_only == UPDATED
