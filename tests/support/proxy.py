"""A TCP proxy that tests can stop and start, to take a broker away and bring it back."""

import asyncio
import contextlib
import socket
import threading
from pathlib import Path

from sqlalchemy.engine import make_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proxy:
    """Listens on 127.0.0.1:port and forwards to a TCP address or a unix socket."""

    def __init__(
        self,
        *,
        target_host: str | None = None,
        target_port: int | None = None,
        target_socket: Path | None = None,
    ) -> None:
        self.port = free_port()
        self._host = target_host
        self._port = target_port
        self._socket = target_socket
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Tracked at once, so stopping closes it even before its upstream exists.
        self._writers.add(writer)
        try:
            if self._socket is not None:
                up_reader, up_writer = await asyncio.open_unix_connection(str(self._socket))
            else:
                up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = self._loop.create_task(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_client, "127.0.0.1", self.port, reuse_address=True
        )

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def database_proxy(database_url: str) -> tuple[Proxy, str]:
    """A proxy in front of the database server, and the database's URL through it."""
    url = make_url(database_url)
    socket_dir = url.query.get("host")
    if socket_dir:
        proxy = Proxy(target_socket=Path(str(socket_dir)) / f".s.PGSQL.{url.port or 5432}")
    else:
        proxy = Proxy(target_host=url.host or "127.0.0.1", target_port=url.port or 5432)
    through = url.set(host="127.0.0.1", port=proxy.port, query={})
    return proxy, through.render_as_string(hide_password=False)
