"""The `cdp` command line."""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import typer
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from api import embedded
from api.cli.compliance import compliance_app, dsr_app
from api.cli.errors import one_line_errors
from api.cli.imports import import_app
from api.cli.mail import mail_app
from api.cli.segments import segments_app
from api.cli.templates import templates_app
from api.logging import configure as configure_logging
from api.serving import Supervisor
from api.settings import get_settings
from domain import migrate as migrations
from domain import workspaces

app = typer.Typer(
    name="cdp",
    help="A headless customer data platform for behaviour-driven email.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
workspace_app = typer.Typer(help="Manage workspaces.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(import_app, name="import")
app.add_typer(dsr_app, name="dsr")
app.add_typer(compliance_app, name="compliance")
app.add_typer(segments_app, name="segments")
app.add_typer(templates_app, name="templates")
app.add_typer(mail_app, name="mail")


@app.command()
@one_line_errors
def migrate() -> None:
    """Run `alembic upgrade head` against DATABASE_URL (or the embedded server)."""
    settings = get_settings()
    migrations.upgrade(embedded.database_url(settings), settings.app_db_role)
    print("database is at the latest revision", file=sys.stderr)


@app.command()
@one_line_errors
def serve(
    host: str | None = typer.Option(None, help="Interface to bind (default: HOST)."),
    port: int | None = typer.Option(None, help="Port to bind (default: PORT).", min=1, max=65535),
    workers: int = typer.Option(
        1, min=1, max=64, envvar="WEB_CONCURRENCY", help="API processes (default 1)."
    ),
) -> None:
    """Run the API only."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.json_logs)
    # Resolved once here, so every worker process uses the same database.
    os.environ["DATABASE_URL"] = embedded.database_url(settings)
    get_settings.cache_clear()
    # uvicorn re-raises the SIGTERM it handled with the default action, which would
    # kill the process before the embedded PostgreSQL is stopped at exit.
    signal.signal(signal.SIGTERM, lambda *_: None)
    config = uvicorn.Config(
        "api.asgi:app",
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )
    if workers > 1:
        Supervisor(config, workers).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        # uvicorn has logged why the app did not start.
        raise typer.Exit(code=STARTUP_FAILURE)


@app.command()
@one_line_errors
def worker(
    processes: int | None = typer.Option(
        None, min=1, help="Worker processes (default: WORKER_PROCESSES)."
    ),
    threads: int | None = typer.Option(
        None, min=1, help="Threads per process (default: WORKER_THREADS)."
    ),
    module: list[str] = typer.Option([], help="Extra actor modules to load.", hidden=True),
) -> None:
    """Run the Dramatiq workers."""
    settings = get_settings()
    env = dict(os.environ)
    env["DATABASE_URL"] = embedded.database_url(settings)
    args = [
        sys.executable,
        "-m",
        "dramatiq",
        "api.worker",
        *module,
        "--processes",
        str(processes or settings.worker_processes),
        "--threads",
        str(threads or settings.worker_threads),
    ]
    os.execve(sys.executable, args, env)  # noqa: S606 - replaces this process with dramatiq


@workspace_app.command("create")
@one_line_errors
def workspace_create(
    name: str = typer.Argument(..., help="The workspace's name."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Create a workspace with an admin API token and a write key."""
    settings = get_settings()
    workspaces.validate_name(name)
    created = asyncio.run(
        workspaces.create_standalone(
            embedded.database_url(settings), role=settings.app_db_role or None, name=name
        )
    )
    payload = {
        "workspace_id": str(created.workspace.id),
        "api_token": created.api_token,
        "write_key": created.write_key,
    }
    if as_json:
        print(json.dumps(payload))
    else:
        for key, value in payload.items():
            print(f"{key}: {value}")


@app.command()
@one_line_errors
def inbound(
    host: str | None = typer.Option(None, help="Interface to bind (default: INBOUND_HOST)."),
    port: int | None = typer.Option(
        None, help="Port to bind (default: INBOUND_PORT).", min=1, max=65535
    ),
) -> None:
    """Run the SMTP server for bounces and feedback loops (the return-path addresses)."""
    from api.cli.inbound import serve_inbound  # noqa: PLC0415 - only this command needs it

    serve_inbound(get_settings(), host=host, port=port)


@app.command("export-schema")
@one_line_errors
def export_schema(
    path: Path = typer.Argument(Path("schema.graphql"), help="Where to write the SDL."),
) -> None:
    """Write the GraphQL schema (SDL) to a file."""
    from api.graphql.schema import sdl  # noqa: PLC0415 - only this command needs it

    path.write_text(sdl())
    print(f"wrote {path}", file=sys.stderr)


@app.command()
@one_line_errors
def dev() -> None:
    """Embedded PostgreSQL, migrations, the API, a worker and a mail catcher, all in one."""
    from api.cli.dev import run_dev  # noqa: PLC0415

    run_dev(get_settings())


def run() -> None:
    app()


if __name__ == "__main__":
    run()
