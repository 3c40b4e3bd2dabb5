"""The embedded default: a real PostgreSQL from `pgserver` in DATA_DIR.

Used only when DATABASE_URL is unset, and never in production. Other `cdp`
commands attach to the same server while `cdp dev` runs; pgserver counts
the processes that use it and stops the server when the last one exits.
"""

import json
import warnings
from pathlib import Path

import psutil
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from api.settings import Settings

EMBEDDED_DATABASE = "cdp"

# pgserver asks platformdirs for a runtime folder, which warns (at start and at
# exit) when XDG_RUNTIME_DIR is unset; its fallback is fine for a local server.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


class EmbeddedUnavailableError(RuntimeError):
    pass


def pgdata(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "pgdata"


def _forget_dead_users(path: Path) -> None:
    """Drop processes that died without detaching from pgserver's list of users.

    pgserver stops the server when its last user exits, but a user killed
    outright never removes itself, and the server would then outlive every
    later run.
    """
    from pgserver.postgres_server import PostgresServer  # noqa: PLC0415 - embedded mode only

    users = path / ".handle_pids.json"
    with PostgresServer._lock:  # noqa: SLF001 - the lock pgserver itself uses for this file
        if not users.exists():
            return
        try:
            pids = [int(p) for p in json.loads(users.read_text())]
        except (ValueError, TypeError):
            pids = []
        users.write_text(json.dumps([p for p in pids if psutil.pid_exists(p)]))


def server_uri(path: Path) -> str:
    """Start (or attach to) the embedded server in `path`; return its maintenance URL."""
    from pgserver.postgres_server import get_server  # noqa: PLC0415 - embedded mode only

    path.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(path)
    server = get_server(path, cleanup_mode="stop")
    return str(server.get_uri())


def start(path: Path) -> str:
    """Start (or attach to) the embedded server; return its `cdp` database URL."""
    maintenance = server_uri(path)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
        ).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(EMBEDDED_DATABASE)))
    return str(
        make_url(maintenance).set(database=EMBEDDED_DATABASE).render_as_string(hide_password=False)
    )


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    if settings.production:
        raise EmbeddedUnavailableError("DATABASE_URL is required in production")
    return start(pgdata(settings))
