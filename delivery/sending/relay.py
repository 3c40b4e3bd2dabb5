"""SMTP to the relay over kept-open connections, and what each reply means for a delivery.

A worker sends many messages per connection: a new TCP and TLS handshake
per message would cost more than the message. Where the relay offers
PIPELINING (RFC 2920), MAIL, RCPT and DATA go out together, so a message
costs two round trips instead of four. The client runs on the worker's
event loop: neither smtplib (blocking, so a thread hop per message) nor
aiosmtplib pipelines, and both cost more per message than this
(bench/README.md, "Sending").

Each reply is classified for the delivery: 2xx SENT, 4xx DEFERRED (try
again later), 5xx BOUNCED (with the reply). A connection that drops is
opened again once for the message in hand; if that fails too, the message
is DEFERRED, never lost and never marked sent unless the relay accepted it.
"""

import asyncio
import base64
import functools
import re
import ssl
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

from delivery.sending.message import Envelope

TIMEOUT = 30.0  # seconds for any one SMTP exchange
MESSAGES_PER_CONNECTION = 500  # relays limit this; a fresh connection now and then is cheap
TEMPORARY = 400
PERMANENT = 500
_READY, _AUTHENTICATED, _START_DATA = 220, 235, 354


class Tls(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class Result(StrEnum):
    SENT = "SENT"
    DEFERRED = "DEFERRED"
    BOUNCED = "BOUNCED"


@functools.cache
def _system_context() -> ssl.SSLContext:
    """The system's trusted certificates, loaded once per process: loading them took a
    noticeable share of a campaign worker's time when each new connection did."""
    return ssl.create_default_context()


@dataclass(frozen=True)
class RelaySettings:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: Tls = Tls.NONE
    # The certificates trusted for TLS; the system's when None.
    tls_context: ssl.SSLContext | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Outcome:
    result: Result
    code: int | None
    reply: str


def _classify(code: int, reply: str) -> Outcome:
    if code >= PERMANENT:
        return Outcome(Result.BOUNCED, code, reply)
    if code >= TEMPORARY:
        return Outcome(Result.DEFERRED, code, reply)
    return Outcome(Result.SENT, code, reply)


class RefusedError(Exception):
    """The relay refused the session itself (its greeting, STARTTLS or the login)."""

    def __init__(self, code: int, reply: str) -> None:
        super().__init__(f"{code} {reply}")
        self.code, self.reply = code, reply


# A pattern that starts with a literal is searched for with memchr (bench/README.md,
# "Sending").
_DOT_AFTER_NEWLINE = re.compile(rb"\n\.")


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA carries it: a dot at the start of a line doubled, then the
    lone-dot line."""
    stuffed = _DOT_AFTER_NEWLINE.sub(b"\n..", data)
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + (b".\r\n" if stuffed.endswith(b"\r\n") else b"\r\n.\r\n")


_LONGEST_REPLY = 64 * 1024  # bytes of a reply line, as asyncio's streams allow


class _Replies(asyncio.Protocol):
    """The relay's replies, parsed as they arrive; a sender waits for as many as it needs.

    A protocol rather than asyncio's streams: a message's replies come in two
    reads, and each is parsed where it arrives instead of through a
    coroutine a line (bench/README.md, "Sending").
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._lines: list[str] = []
        self._replies: deque[tuple[int, str]] = deque()
        self._wanted = 0
        self._waiter: asyncio.Future[None] | None = None
        self._lost: Exception | None = None
        self._loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        # When the reply awaited now was first awaited: a timer a connection, not one a
        # message, tells a relay gone silent (`_watch`).
        self._since: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        self._loop.call_later(TIMEOUT / 4, self._watch)

    def _watch(self) -> None:
        if self.closed.done():
            return
        if self._since is not None and self._loop.time() - self._since > TIMEOUT:
            self._fail(TimeoutError(f"the relay did not answer within {TIMEOUT:.0f} s"))
            return
        self._loop.call_later(TIMEOUT / 4, self._watch)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line, start = buffer[start : end + 1], end + 1
            if len(line) < 4 or not line[:3].isdigit():  # noqa: PLR2004 - "NNN " at least
                self._fail(ConnectionError(f"the relay's reply makes no sense: {line[:80]!r}"))
                return
            self._lines.append(line[4:].strip().decode(errors="replace"))
            if line[3:4] != b"-":
                self._replies.append((int(line[:3]), "\n".join(self._lines)))
                self._lines = []
        self._buffer = buffer[start:]
        if len(self._buffer) > _LONGEST_REPLY:
            self._fail(ConnectionError("the relay's reply line is too long"))
            return
        if len(self._replies) >= self._wanted:
            self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = self._lost or exc or ConnectionError("the relay closed the connection")
        self._wake()
        if not self.closed.done():
            self.closed.set_result(None)

    def _fail(self, error: Exception) -> None:
        self._lost = error
        self._wake()
        if self.transport is not None:
            self.transport.abort()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def replies(self, count: int) -> list[tuple[int, str]]:
        """The next `count` replies, waiting for them to arrive."""
        while len(self._replies) < count:
            if self._lost is not None:
                raise ConnectionError(str(self._lost) or type(self._lost).__name__)
            self._wanted = count
            self._waiter = self._loop.create_future()
            if self._since is None:
                self._since = self._loop.time()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self._since = None
        return [self._replies.popleft() for _ in range(count)]


@dataclass
class Connection:
    """One SMTP session, opened on first use and kept for the next messages."""

    settings: RelaySettings
    sent: int = 0
    _relay: _Replies | None = None
    _pipelining: bool = False
    _loop: asyncio.AbstractEventLoop | None = None

    def _write(self, data: bytes) -> None:
        relay = self._relay
        if relay is None or relay.transport is None or relay.transport.is_closing():
            # A kept connection the relay closed while it sat idle: uvloop refuses the write.
            raise ConnectionError("the relay closed the connection")
        relay.transport.write(data)

    async def _reply(self) -> tuple[int, str]:
        """One reply, all its lines: its code and its text."""
        if self._relay is None:
            raise ConnectionError("not connected")
        [reply] = await self._relay.replies(1)
        return reply

    async def _command(self, line: str, expected: int) -> list[str]:
        self._write(line.encode() + b"\r\n")
        code, reply = await self._reply()
        if code != expected:
            raise RefusedError(code, reply)
        return reply.split("\n")

    async def _hello(self) -> set[str]:
        lines = await self._command("EHLO cdp", 250)
        return {line.split(" ", 1)[0].upper() for line in lines[1:]}

    async def _open(self) -> None:
        s = self.settings
        context = None if s.tls is Tls.NONE else s.tls_context or _system_context()
        self._loop = asyncio.get_running_loop()
        _, self._relay = await self._loop.create_connection(
            _Replies, s.host, s.port, ssl=context if s.tls is Tls.TLS else None
        )
        code, reply = await self._reply()
        if code != _READY:
            raise RefusedError(code, reply)
        features = await self._hello()
        if s.tls is Tls.STARTTLS:
            await self._command("STARTTLS", _READY)
            relay = self._relay
            if relay.transport is None:
                raise ConnectionError("not connected")
            secured = await self._loop.start_tls(
                relay.transport, relay, context or _system_context(), server_hostname=s.host
            )
            if secured is None:
                raise ConnectionError("the relay closed the connection during STARTTLS")
            relay.transport = secured
            features = await self._hello()
        if s.username:
            secret = f"\0{s.username}\0{s.password or ''}".encode()
            await self._command(f"AUTH PLAIN {base64.b64encode(secret).decode()}", _AUTHENTICATED)
        self._pipelining = "PIPELINING" in features

    async def close(self) -> None:
        relay, self._relay = self._relay, None
        self.sent = 0
        if relay is None or relay.transport is None:
            return
        if self._loop is not asyncio.get_running_loop():
            return  # another loop's transport is not this loop's to touch; it goes with its loop
        try:
            relay.transport.write(b"QUIT\r\n")
            relay.transport.close()
            await asyncio.wait_for(asyncio.shield(relay.closed), 1.0)
        except (OSError, TimeoutError, RuntimeError):
            pass  # it is going away either way

    def usable(self) -> bool:
        """Whether this connection can be used on the running event loop."""
        return self._relay is None or self._loop is asyncio.get_running_loop()

    async def send(self, envelope: Envelope) -> Outcome:
        """Hand one message to the relay; what the relay said."""
        for attempt in range(2):
            try:
                if self._relay is None:
                    async with asyncio.timeout(TIMEOUT):
                        await self._open()
                return await self._send(envelope)
            except RefusedError as error:
                # Refused while connecting (a greeting, STARTTLS or a login refused).
                await self.close()
                return _classify(error.code, error.reply)
            except (ConnectionError, TimeoutError, OSError) as error:
                await self.close()
                if attempt:
                    reason = str(error) or type(error).__name__
                    return Outcome(
                        Result.DEFERRED, None, f"the relay could not be reached: {reason}"
                    )
        return Outcome(Result.DEFERRED, None, "the relay could not be reached")

    async def _send(self, envelope: Envelope) -> Outcome:
        if self._relay is None:
            raise ConnectionError("not connected")
        commands = [f"MAIL FROM:<{envelope.sender}>", f"RCPT TO:<{envelope.recipient}>", "DATA"]
        replies: list[tuple[int, str]] = []
        if self._pipelining:
            self._write(f"{commands[0]}\r\n{commands[1]}\r\nDATA\r\n".encode())
            replies = await self._relay.replies(3)
        else:
            for command in commands:
                self._write(command.encode() + b"\r\n")
                replies.append(await self._reply())
                if replies[-1][0] >= TEMPORARY:
                    break
        refused = next(((c, r) for c, r in replies if c >= TEMPORARY), None)
        if replies[-1][0] == _START_DATA:
            # Pipelined, the relay may take DATA after refusing the recipient: end it empty.
            self._write(b".\r\n" if refused else _dot_stuffed(envelope.data))
            code, reply = await self._reply()
            refused = refused or ((code, reply) if code >= TEMPORARY else None)
        elif refused is None:
            raise ConnectionError(f"the relay answered DATA with {replies[-1][0]}")
        if refused is not None:
            self._write(b"RSET\r\n")
            await self._reply()
            return _classify(*refused)
        self.sent += 1
        if self.sent >= MESSAGES_PER_CONNECTION:
            await self.close()
        return _classify(code, reply)


@dataclass
class Pool:
    """The connections of one worker process, shared by the batches on its event loop."""

    settings: RelaySettings
    _idle: list[Connection] = field(default_factory=list)

    def connection(self) -> "_Borrowed":
        """A connection for one message, back to the pool when the `async with` ends."""
        return _Borrowed(self)

    def take(self) -> Connection:
        while self._idle:
            candidate = self._idle.pop()
            if candidate.usable():
                return candidate
        return Connection(self.settings)

    def give_back(self, connection: Connection) -> None:
        self._idle.append(connection)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


class _Borrowed:
    """`Pool.connection`'s context: a class, as cheaper per message than a generator's."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._connection: Connection | None = None

    async def __aenter__(self) -> Connection:
        self._connection = self._pool.take()
        return self._connection

    async def __aexit__(self, *_: object) -> None:
        if self._connection is not None:
            self._pool.give_back(self._connection)
