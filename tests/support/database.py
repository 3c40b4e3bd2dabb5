"""Test databases: TEST_DATABASE_URL's server, or an embedded one."""

import os
import secrets
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from domain.db import libpq_url

APP_ROLE = "cdp_app"
# One signing secret per test run, shared by the API under test and worker subprocesses.
SECRET = secrets.token_urlsafe(48)


def server_url() -> str:
    """A URL to a maintenance database on the test server."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return libpq_url(configured)
    from api.embedded import server_uri

    return server_uri(Path(tempfile.gettempdir()) / f"cdp-test-pgdata-{os.getuid()}")


def database_in(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def create_database(url: str, prefix: str = "cdp_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_in(url, name)


def drop_database(url: str, database_url: str) -> None:
    name = make_url(database_url).database
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
