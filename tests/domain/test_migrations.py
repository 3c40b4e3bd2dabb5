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
