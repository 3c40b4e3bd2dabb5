"""Migrations and models agree, and the history goes down to base and up again."""

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool

from domain import migrate
from domain.db import sqlalchemy_url
from migrations.models import include_object as _include_object
from migrations.models import target_metadata
from tests.support.database import APP_ROLE, create_database, drop_database


def _diff(url: str) -> list:
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_object": _include_object,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        diff = compare_metadata(context, target_metadata())
    engine.dispose()
    return diff


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname IN ('public', 'dramatiq')"
            )
        }


def test_models_match_migrations(database_url):
    assert _diff(database_url) == []


def test_downgrade_to_base_and_upgrade_again(pg_server):
    url = create_database(pg_server, "cdp_migr")
    try:
        migrate.upgrade(url, APP_ROLE)
        assert {"workspaces", "api_tokens", "outbox", "queue"} <= _tables(url)
        migrate.downgrade(url, APP_ROLE)
        assert _tables(url) == {"alembic_version"}
        migrate.upgrade(url, APP_ROLE)
        assert _diff(url) == []
    finally:
        drop_database(pg_server, url)


def test_0015_keeps_the_queued_segment_upkeep_both_ways(pg_server):
    """The upkeep queue changes shape (a row per profile, then a row per change) without
    losing a queued profile or its reasons, in either direction."""
    url = create_database(pg_server, "cdp_migr")
    try:
        migrate.upgrade(url, APP_ROLE, "0014")
        with psycopg.connect(url) as conn:
            ws = conn.execute(
                "INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), 'w') RETURNING id"
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO segment_pending (workspace_id, profile_id, reasons) VALUES "
                "(%(ws)s, '00000000-0000-0000-0000-000000000001', '{traits}'), "
                "(%(ws)s, '00000000-0000-0000-0000-000000000002', '{new,event:Signed Up}')",
                {"ws": ws},
            )
        migrate.upgrade(url, APP_ROLE, "0015")
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT changes, profiles FROM segment_pending").fetchall()
        [(changes, profiles)] = rows
        assert profiles == 2
        assert sorted((c["pid"][-1], c["reasons"]) for c in changes) == [
            ("1", ["traits"]),
            ("2", ["new", "event:Signed Up"]),
        ]
        migrate.downgrade(url, APP_ROLE, "0014")
        with psycopg.connect(url) as conn:
            back = conn.execute(
                "SELECT profile_id::text, reasons FROM segment_pending ORDER BY 1"
            ).fetchall()
        assert [(pid[-1], reasons) for pid, reasons in back] == [
            ("1", ["traits"]),
            ("2", ["new", "event:Signed Up"]),
        ]
    finally:
        drop_database(pg_server, url)
