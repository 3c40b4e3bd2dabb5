"""Shared pieces for the benchmarks: a fresh database, a real server, a raw HTTP load generator.

Every benchmark prints its figure next to a baseline measured in the same run
on the same machine, and the ratio between them.
"""

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import httpx
import psutil

from domain import migrate
from tests.support.database import APP_ROLE, create_database, drop_database, server_url
from tests.support.proxy import free_port

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def fresh_database() -> Iterator[str]:
    server = server_url()
    url = create_database(server, "cdp_bench")
    migrate.upgrade(url, APP_ROLE)
    try:
        yield url
    finally:
        drop_database(server, url)


def env_for(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "BROKER_URL"}
    env.update(
        {
            "DATABASE_URL": database_url,
            "APP_DB_ROLE": APP_ROLE,
            "LOG_LEVEL": "WARNING",
            "SECRET_KEY": "bench-secret-" + "x" * 40,
            "DB_POOL_SIZE": os.environ.get("DB_POOL_SIZE", "10"),
        }
    )
    return env


def create_workspace(database_url: str) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", "from api.cli.main import run; run()", "workspace", "create", "bench", "--json"],
        cwd=ROOT, env=env_for(database_url), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout))


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    pid: int


_SAMPLE_SECONDS = 1.0


class CpuMeter:
    """CPU seconds spent over a span by the API server (all its processes), PostgreSQL
    and the load generator itself, and how much of the machine sat idle.

    It tells where a request's cost goes: together they bound what this
    machine can do, whatever the concurrency.
    """

    def __init__(self, server: Server) -> None:
        self._server = psutil.Process(server.pid)
        self._me = psutil.Process()
        self.server_seconds = 0.0
        self.postgres_seconds = 0.0
        self.load_seconds = 0.0
        self.idle_share = 0.0
        self._postgres_start: dict[int, float] = {}
        self._postgres_seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _server_cpu(self) -> float:
        total = 0.0
        for proc in [self._server, *self._server.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    @staticmethod
    def _postgres_cpu() -> dict[int, float]:
        found: dict[int, float] = {}
        for proc in psutil.process_iter(["name"]):
            if (proc.info["name"] or "").startswith("postgres"):
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    found[proc.pid] = times.user + times.system
        return found

    def _sample(self) -> None:
        # A backend that ends during the span (a pool's overflow connection) is gone from
        # the last reading: its CPU counts up to the last sample that saw it.
        while not self._stop.wait(_SAMPLE_SECONDS):
            self._postgres_seen.update(self._postgres_cpu())

    def _load_cpu(self) -> float:
        times = self._me.cpu_times()
        return float(times.user + times.system)

    def __enter__(self) -> Self:
        self._start = (self._server_cpu(), self._load_cpu())
        self._postgres_start = self._postgres_cpu()
        self._postgres_seen = dict(self._postgres_start)
        self._machine = psutil.cpu_times()
        self._sampler.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._sampler.join()
        self.server_seconds = self._server_cpu() - self._start[0]
        self._postgres_seen.update(self._postgres_cpu())
        self.postgres_seconds = sum(
            seconds - self._postgres_start.get(pid, 0.0)
            for pid, seconds in self._postgres_seen.items()
        )
        self.load_seconds = self._load_cpu() - self._start[1]
        before, after = self._machine, psutil.cpu_times()
        spent = sum(after) - sum(before)
        self.idle_share = (after.idle - before.idle) / spent if spent else 0.0

    def per(self, count: int, unit: str) -> str:
        return (
            f"CPU per {unit}: server {self.server_seconds / count * 1000:.2f} ms, "
            f"PostgreSQL {self.postgres_seconds / count * 1000:.2f} ms, "
            f"load generator {self.load_seconds / count * 1000:.2f} ms "
            f"(a backend that ended during the run up to its last reading); "
            f"the machine was idle {self.idle_share:.0%} of the time"
        )


@contextmanager
def running_server(database_url: str, workers: int = 1) -> Iterator[Server]:
    port = free_port()
    log = Path(os.environ.get("BENCH_SERVER_LOG", os.devnull)).open("w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-c", "from api.cli.main import run; run()", "serve", "--port", str(port),
         "--workers", str(workers)],
        cwd=ROOT, env=env_for(database_url), stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not start")
        yield Server("127.0.0.1", port, proc.pid)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def http_request(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def drive(
    host: str, port: int, requests: list[bytes], *, connections: int, reconnect: bool = False
) -> tuple[float, list[float], list[int]]:
    """Send pre-built requests from `connections` concurrent senders; (seconds, latencies, statuses).

    Senders keep their connection alive, or with `reconnect` open one per
    request. With several server processes, a kept-alive connection stays with
    the process that accepted it, and a few of them can all land on one process
    while the other idles; a new connection goes to whichever process is free
    to accept it.
    """
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []
    statuses: list[int] = []

    async def send(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> None:
        started = time.perf_counter()
        writer.write(request)
        status, _ = await _read_response(reader)
        latencies.append(time.perf_counter() - started)
        statuses.append(status)

    async def worker() -> None:
        if reconnect:
            while not queue.empty():
                request = queue.get_nowait()
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    await send(reader, writer, request)
                finally:
                    writer.close()
            return
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not queue.empty():
                await send(reader, writer, queue.get_nowait())
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started, latencies, statuses


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def _loop_seconds() -> float:
    started = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i
    return time.perf_counter() - started


def machine_reference() -> str:
    """How fast this machine runs plain CPython right now, to compare runs made on others.

    The same code has measured twice as slow on one machine from one session
    to the next; this line says which kind of run a figure comes from. The
    loop runs alone, then on both cores at once: a virtual machine's second
    core has been seen slower than its first, which one process cannot tell.
    """
    alone = min(_loop_seconds() for _ in range(3))
    with ProcessPoolExecutor(2) as pool:
        both = min(
            max(f.result() for f in [pool.submit(_loop_seconds) for _ in range(2)])
            for _ in range(3)
        )
    return (
        f"machine reference: 2M-step CPython loop in {alone * 1000:.0f} ms alone, "
        f"{both * 1000:.0f} ms on both cores at once (best of 3)"
    )
