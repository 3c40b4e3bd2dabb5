"""The API in several processes, each with a listening socket of its own.

uvicorn's own `--workers` shares one listening socket between its processes.
The process that wakes first accepts every connection waiting, so a burst of
new connections (a load balancer opening its keep-alive pool, a deploy) lands
mostly on one process, which then serves them for as long as they live while
the others idle (measured in bench/README.md, "api/serving.py"). Here every
process binds the port itself with SO_REUSEPORT, and the kernel spreads new
connections across them by address.

The supervisor starts the processes, starts a new one in place of any that
dies, and on SIGTERM or SIGINT stops them all and waits for them.
"""

import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from types import FrameType

import uvicorn

_POLL_SECONDS = 0.5
_STOP_SECONDS = 30.0


class StartupFailedError(RuntimeError):
    pass


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port that other processes may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, telling the supervisor once it serves."""

    def __init__(self, config: uvicorn.Config, ready: EventType) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._ready.set()


def _serve(config: uvicorn.Config, ready: EventType) -> None:
    """One process: its own socket, then uvicorn until a signal stops it."""
    sock = listening_socket(config.host, config.port)
    _Server(config, ready).run(sockets=[sock])


class Supervisor:
    def __init__(self, config: uvicorn.Config, processes: int) -> None:
        self._config = config
        self._count = processes
        self._context = multiprocessing.get_context("spawn")
        # Each process with the event it sets once it serves.
        self._running: list[tuple[BaseProcess, EventType]] = []
        self._stop = threading.Event()

    @property
    def processes(self) -> list[BaseProcess]:
        return [process for process, _ in self._running]

    def _start_one(self) -> tuple[BaseProcess, EventType]:
        ready = self._context.Event()
        process = self._context.Process(target=_serve, args=(self._config, ready), daemon=False)
        process.start()
        return process, ready

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self._stop.set()

    def run(self) -> None:
        # Checked here, so that a port held by another program fails at once
        # with one clear error instead of in every process.
        listening_socket(self._config.host, self._config.port).close()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._running = [self._start_one() for _ in range(self._count)]
            while not self._stop.wait(_POLL_SECONDS):
                self._replace_dead()
        finally:
            self._stop_all()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _replace_dead(self) -> None:
        kept: list[tuple[BaseProcess, EventType]] = []
        for process, ready in self._running:
            if process.is_alive():
                kept.append((process, ready))
                continue
            # One that never served fails at start-up (a bad setting, the app
            # unable to load): starting it again would only loop.
            if not ready.is_set():
                raise StartupFailedError(
                    f"an API process exited during start-up (exit code {process.exitcode})"
                )
            kept.append(self._start_one())
        self._running = kept

    def _stop_all(self) -> None:
        for process, _ in self._running:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + _STOP_SECONDS
        for process, _ in self._running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
