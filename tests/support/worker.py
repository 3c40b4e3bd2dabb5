"""Run the real `cdp worker` as a subprocess for end-to-end tests."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.database import APP_ROLE, SECRET

ROOT = Path(__file__).resolve().parents[2]
READY = "is ready for action"


@dataclass
class Worker:
    proc: subprocess.Popen[str]
    lines: list[str]

    def kill(self) -> None:
        """SIGKILL the worker and its processes, as a crash or the OOM killer would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@contextmanager
def running_worker(
    database_url: str, broker_url: str | None = None, boot_timeout: float = 60.0
) -> Iterator[list[str]]:
    with worker_process(database_url, broker_url, boot_timeout) as worker:
        yield worker.lines


@contextmanager
def worker_process(
    database_url: str,
    broker_url: str | None = None,
    boot_timeout: float = 60.0,
    *,
    extra_env: dict[str, str] | None = None,
    processes: int = 1,
    threads: int = 2,
    modules: tuple[str, ...] = ("tests.support.probe_actors",),
) -> Iterator[Worker]:
    """`cdp worker` with the tests' probe actors too, unless `modules` says otherwise."""
    env = {k: v for k, v in os.environ.items() if k not in {"BROKER_URL", "DATABASE_URL"}}
    env.update(
        {
            "DATABASE_URL": database_url,
            "APP_DB_ROLE": APP_ROLE,
            "OUTBOX_RELAY_INTERVAL": "0.3",
            "PYTHONUNBUFFERED": "1",
            "SECRET_KEY": SECRET,
        }
    )
    if broker_url:
        env["BROKER_URL"] = broker_url
    env.update(extra_env or {})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from api.cli.main import run; run()",
            "worker",
            "--processes",
            str(processes),
            "--threads",
            str(threads),
            *(arg for module in modules for arg in ("--module", module)),
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if READY in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + boot_timeout
        while not ready.wait(0.2):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("worker did not start:\n" + "".join(lines[-40:]))
        yield Worker(proc, lines)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
