"""The embedded default: a real PostgreSQL from `pgserver` in DATA_DIR.

Used only when DATABASE_URL is unset, and never in production. Other `cdp`
commands attach to the same server while `cdp dev` runs; pgserver counts
the processes that use it and stops the server when the last one exits.
"""

from pathlib import Path

import psycopg
from psycopg import sql

from api.settings import Settings

EMBEDDED_DATABASE = "cdp"


class EmbeddedUnavailableError(RuntimeError):
    pass


def pgdata(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "pgdata"


def start(path: Path) -> str:
    """Start (or attach to) the embedded server; return its `cdp` database URL."""
    from pgserver.postgres_server import get_server  # noqa: PLC0415 - embedded mode only

    path.mkdir(parents=True, exist_ok=True)
    server = get_server(path, cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
        ).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(EMBEDDED_DATABASE)))
    return str(server.get_uri(EMBEDDED_DATABASE))


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    if settings.production:
        raise EmbeddedUnavailableError("DATABASE_URL is required in production")
    return start(pgdata(settings))
