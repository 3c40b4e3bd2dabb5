"""`cdp dev`: PostgreSQL, migrations, the API, a worker and a mail catcher in one process tree.

Shutdown is the part that needs care. SIGINT and SIGTERM both mean "stop
everything cleanly": the API drains, the worker gets SIGTERM (then SIGKILL
after a grace period), the mail catcher stops, and the embedded PostgreSQL
is stopped by pgserver's exit hook, which only runs if this process exits
normally. uvicorn re-raises the signal it caught once it has shut down;
with the default SIGTERM disposition that would kill this process on the
spot and skip every cleanup step, so our own handlers stay installed for
the whole run.
"""

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from api import embedded
from api.app import create_app
from api.inbound import InboundServer
from api.inbound import from_settings as inbound_server
from api.logging import configure as configure_logging
from api.mailcatcher import MailCatcher
from api.settings import Settings
from domain import credentials, migrate, workspaces
from domain.db import create_engine, session_factory
from domain.errors import AuthenticationError
from domain.uow import UnitOfWork

DEV_WORKSPACE_NAME = "dev"
DEV_WORKSPACE_FILE = "dev-workspace.json"
MAIL_FOLDER = "mail"
WORKER_STOP_TIMEOUT = 10.0
HTTP_GRACEFUL_SHUTDOWN = 5
WORKER_COMMAND = ("-c", "from api.cli.main import run; run()", "worker")
_PR_SET_PDEATHSIG = 1

_progress = Console(stderr=True, highlight=False, soft_wrap=True)
# soft_wrap keeps long tokens on one line, so they can be copied from the banner.
_banner = Console(highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class DevCredentials:
    workspace_id: str
    api_token: str
    write_key: str


def _say(message: str) -> None:
    _progress.print(f"[bold cyan]cdp dev[/] {escape(message)}")


class _StopSignals:
    """Turns SIGINT and SIGTERM into a clean stop.

    While `interrupt` is true (start-up), a signal raises KeyboardInterrupt so
    a slow step is abandoned; afterwards it is only recorded, so the cleanup
    itself cannot be cut short.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self.interrupt = True
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        if self.interrupt:
            raise KeyboardInterrupt


def run_dev(settings: Settings) -> None:
    if settings.production:
        raise RuntimeError(
            "cdp dev refuses ENV=production; run `cdp serve` and `cdp worker` against DATABASE_URL"
        )
    configure_logging(settings.log_level, settings.json_logs)
    # pgserver logs every pg_ctl command line and aiosmtpd every SMTP command at
    # INFO; only their problems matter here (the mail catcher logs each mail itself).
    for noisy in ("pgserver", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop = _StopSignals()
    stop.install()
    try:
        _run(settings, stop)
    except KeyboardInterrupt:
        _say("interrupted during start-up; stopped")
    finally:
        stop.restore()


def _run(settings: Settings, stop: _StopSignals) -> None:
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    problem: str | None = None
    with contextlib.ExitStack() as cleanup:
        # Ports are checked first, so a busy one fails before anything slow starts.
        listener = _listen(settings.host, settings.port, "the API", "HOST/PORT")
        cleanup.callback(listener.close)
        _listen(
            settings.smtp_host, settings.smtp_port, "the mail catcher", "SMTP_HOST/SMTP_PORT"
        ).close()
        _listen(
            settings.inbound_host, settings.inbound_port, "the inbound SMTP server",
            "INBOUND_HOST/INBOUND_PORT",
        ).close()  # fmt: skip
        try:
            if settings.database_url:
                _say(f"using DATABASE_URL ({_safe_url(settings.database_url)})…")
            else:
                _say(f"starting PostgreSQL (embedded, {embedded.pgdata(settings)})…")
            database_url = embedded.database_url(settings)

            _say("migrating…")
            migrate.upgrade(database_url, settings.app_db_role)

            _say("preparing the dev workspace…")
            dev, reused = asyncio.run(
                _ensure_dev_workspace(
                    database_url, settings.app_db_role, data_dir / DEV_WORKSPACE_FILE
                )
            )
            if reused:
                (data_dir / DEV_WORKSPACE_FILE).chmod(0o600)
            _say(f"{'reusing' if reused else 'created'} dev workspace {dev.workspace_id}")

            _say("starting the worker…")
            worker = _start_worker(database_url, data_dir)
            cleanup.callback(_stop_worker, worker, stop)

            mail = MailCatcher(data_dir / MAIL_FOLDER, settings.smtp_host, settings.smtp_port)
            _say(f"starting the mail catcher on {mail.address}…")
            mail.start()
            cleanup.callback(_stop_mail, mail)

            bounces = inbound_server(settings, database_url)
            _say(f"starting the inbound SMTP server (bounces, complaints) on {bounces.address}…")
            bounces.start()
            cleanup.callback(_stop_inbound, bounces)

            _say(f"starting the API on {_local_url(settings.host, settings.port)}…")
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(settings, database_url=database_url),
                    host=settings.host,
                    port=settings.port,
                    log_config=None,
                    access_log=False,
                    timeout_graceful_shutdown=HTTP_GRACEFUL_SHUTDOWN,
                )
            )
            stop.interrupt = False
            if not stop.received:
                problem = asyncio.run(
                    _serve(
                        server,
                        listener,
                        worker,
                        stop,
                        lambda: _print_banner(settings, data_dir, mail, dev),
                    )
                )
        except SystemExit as exc:
            # uvicorn exits this way when the app's start-up fails; it has logged why.
            raise RuntimeError(
                f"the API failed to start (exit code {exc.code}); see the log above"
            ) from None
        finally:
            stop.interrupt = False
            _say("stopping…")
    _say("stopped")
    if problem is not None:
        raise RuntimeError(problem)


async def _serve(
    server: uvicorn.Server,
    listener: socket.socket,
    worker: subprocess.Popen[bytes],
    stop: _StopSignals,
    on_ready: Callable[[], None],
) -> str | None:
    """Serve until a stop signal or the worker's death; return what went wrong, if anything."""
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    announced = False
    problem: str | None = None
    while not serving.done():
        if server.started and not announced:
            announced = True
            on_ready()
        # A signal that landed before uvicorn installed its own handlers is only recorded here.
        if stop.received and not server.should_exit:
            server.should_exit = True
        code = worker.poll()
        if code is not None and not server.should_exit:
            problem = f"the worker exited unexpectedly ({_describe_exit(code)})"
            _say(f"{problem}; stopping")
            server.should_exit = True
        await asyncio.wait({serving}, timeout=0.1)
    await serving
    return problem


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _listen(host: str, port: int, what: str, settings_hint: str) -> socket.socket:
    try:
        family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise RuntimeError(
            f"{what} cannot listen on {host}:{port} ({reason}); set {settings_hint}"
        ) from None


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "unparsable URL"


def _local_url(host: str, port: int) -> str:
    shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, host)  # noqa: S104
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _load_credentials(path: Path) -> DevCredentials | None:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        _say(f"ignoring unreadable {path.name} ({exc})")
        return None
    fields = DevCredentials.__dataclass_fields__
    if not isinstance(raw, dict) or not all(isinstance(raw.get(name), str) for name in fields):
        _say(f"ignoring {path.name}: it does not hold workspace_id, api_token and write_key")
        return None
    return DevCredentials(**{name: raw[name] for name in fields})


def _save_credentials(path: Path, dev: DevCredentials) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(dev), handle, indent=2)
            handle.write("\n")
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


async def _still_valid(uow: UnitOfWork, dev: DevCredentials) -> bool:
    try:
        principal = await credentials.authenticate_api_token(uow, dev.api_token)
    except AuthenticationError:
        return False
    return str(principal.workspace_id) == dev.workspace_id


async def _ensure_dev_workspace(
    database_url: str, role: str, path: Path
) -> tuple[DevCredentials, bool]:
    """The saved dev credentials if their token still authenticates, else a new workspace."""
    engine = create_engine(database_url, role=role or None, pool_size=1)
    sessions = session_factory(engine)
    try:
        saved = _load_credentials(path)
        if saved is not None:
            async with UnitOfWork(sessions) as uow:
                valid = await _still_valid(uow, saved)
            if valid:
                return saved, True
            _say(f"the token in {path.name} no longer authenticates; creating a new workspace")
        async with UnitOfWork(sessions) as uow:
            created = await workspaces.create_workspace(uow, DEV_WORKSPACE_NAME)
            await uow.commit()
    finally:
        await engine.dispose()
    fresh = DevCredentials(str(created.workspace.id), created.api_token, created.write_key)
    _save_credentials(path, fresh)
    return fresh, False


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook so that the worker gets SIGTERM if `cdp dev` is killed outright.

    Without it, a SIGKILL or an out-of-memory kill of `cdp dev` would leave the
    worker running. Linux only; prctl is looked up before the fork, so the
    child only makes the call.
    """
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


def _start_worker(database_url: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(data_dir)}
    # Its own process group: a terminal's Ctrl-C reaches only `cdp dev`, which
    # stops the worker in order, and a hung worker's whole tree can be killed at once.
    return subprocess.Popen(  # noqa: S603 - a fixed command line: this interpreter and our CLI
        [sys.executable, *WORKER_COMMAND],
        env=env,
        start_new_session=True,
        # Safe here: the worker starts before the mail catcher, the only other thread.
        preexec_fn=_die_with_parent(),  # noqa: PLW1509
    )


def _signal_group(worker: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(worker.pid, signum)


def _stop_worker(worker: subprocess.Popen[bytes], stop: _StopSignals) -> None:
    if worker.poll() is None:
        _say("stopping the worker…")
        # Only the dramatiq main process: it forwards SIGTERM to its children,
        # and a second SIGTERM would make them abandon their current jobs.
        with contextlib.suppress(ProcessLookupError):
            worker.send_signal(signal.SIGTERM)
        signals_before = len(stop.received)
        deadline = time.monotonic() + WORKER_STOP_TIMEOUT
        while worker.poll() is None and time.monotonic() < deadline:
            if len(stop.received) > signals_before:
                _say("asked again; killing the worker")
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=0.1)
        else:
            if worker.poll() is None:
                _say(f"the worker did not stop within {WORKER_STOP_TIMEOUT:.0f} s; killing it")
    # Whatever is left in its process group (a hung worker, or children of a
    # worker that died) goes too.
    _signal_group(worker, signal.SIGKILL)
    worker.wait()


def _stop_mail(mail: MailCatcher) -> None:
    _say("stopping the mail catcher…")
    mail.stop()


def _stop_inbound(server: InboundServer) -> None:
    _say("stopping the inbound SMTP server…")
    server.stop()


def _print_banner(
    settings: Settings, data_dir: Path, mail: MailCatcher, dev: DevCredentials
) -> None:
    base = _local_url(settings.host, settings.port)
    graphql = f"{base}/graphql"
    body = json.dumps({"query": "{ workspace { id name } }"})
    curl = (
        f"curl -s {graphql} -H 'Authorization: Bearer {dev.api_token}' "
        f"-H 'Content-Type: application/json' -d '{body}'"
    )
    database = (
        _safe_url(settings.database_url)
        if settings.database_url
        else f"embedded PostgreSQL in {data_dir / 'pgdata'}"
    )
    rows = [
        ("GraphQL", f"{graphql}  (GraphiQL: open it in a browser)"),
        ("health", f"{base}/healthz"),
        ("SMTP", f"{mail.address}  (mail is saved to {mail.folder})"),
        ("inbound SMTP", f"{settings.inbound_host}:{settings.inbound_port}  (bounces, complaints)"),
        ("data", str(data_dir)),
        ("database", database),
    ]
    workspace_rows = [
        ("workspace_id", dev.workspace_id),
        ("api_token", dev.api_token),
        ("write_key", dev.write_key),
    ]
    _banner.print()
    _banner.rule("[bold green]cdp dev is running[/]")
    for label, value in rows:
        _banner.print(f"  [bold]{label:<13}[/] {escape(value)}")
    _banner.print()
    _banner.print(f"  [bold]dev workspace[/] ({escape(str(data_dir / DEV_WORKSPACE_FILE))})")
    for label, value in workspace_rows:
        _banner.print(f"  [bold]{label:<13}[/] {escape(value)}")
    _banner.print()
    _banner.print("  [bold]try it[/]")
    _banner.print(f"  {escape(curl)}")
    _banner.print()
    _banner.print("  Press Ctrl-C to stop.")
    _banner.rule()
