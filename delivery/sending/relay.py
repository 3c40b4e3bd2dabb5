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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum

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


@dataclass
class Connection:
    """One SMTP session, opened on first use and kept for the next messages."""

    settings: RelaySettings
    sent: int = 0
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _pipelining: bool = False
    _loop: asyncio.AbstractEventLoop | None = None

    async def _reply(self) -> tuple[int, str]:
        """One reply, all its lines: its code and its text."""
        if self._reader is None:
            raise ConnectionError("not connected")
        lines = []
        while True:
            line = await self._reader.readline()
            if len(line) < 4 or not line[:3].isdigit():  # noqa: PLR2004 - "NNN " at least
                raise ConnectionError(f"the relay's reply makes no sense: {line[:80]!r}")
            lines.append(line[4:].strip().decode(errors="replace"))
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    async def _command(self, line: str, expected: int) -> list[str]:
        if self._writer is None:
            raise ConnectionError("not connected")
        self._writer.write(line.encode() + b"\r\n")
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
        self._reader, self._writer = await asyncio.open_connection(
            s.host, s.port, ssl=context if s.tls is Tls.TLS else None
        )
        self._loop = asyncio.get_running_loop()
        code, reply = await self._reply()
        if code != _READY:
            raise RefusedError(code, reply)
        features = await self._hello()
        if s.tls is Tls.STARTTLS:
            await self._command("STARTTLS", _READY)
            await self._writer.start_tls(context or _system_context(), server_hostname=s.host)
            features = await self._hello()
        if s.username:
            secret = f"\0{s.username}\0{s.password or ''}".encode()
            await self._command(f"AUTH PLAIN {base64.b64encode(secret).decode()}", _AUTHENTICATED)
        self._pipelining = "PIPELINING" in features

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        self.sent = 0
        if writer is None:
            return
        try:
            if self._loop is asyncio.get_running_loop():
                writer.write(b"QUIT\r\n")
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (OSError, TimeoutError, RuntimeError):
            pass  # it is going away either way

    def usable(self) -> bool:
        """Whether this connection can be used on the running event loop."""
        return self._writer is None or self._loop is asyncio.get_running_loop()

    async def send(self, envelope: Envelope) -> Outcome:
        """Hand one message to the relay; what the relay said."""
        for attempt in range(2):
            try:
                async with asyncio.timeout(TIMEOUT):
                    if self._writer is None:
                        await self._open()
                    return await self._send(envelope)
            except RefusedError as error:
                # Refused while connecting (a greeting, STARTTLS or a login refused).
                await self.close()
                return _classify(error.code, error.reply)
            except (ConnectionError, TimeoutError, OSError, asyncio.IncompleteReadError) as error:
                await self.close()
                if attempt:
                    reason = str(error) or type(error).__name__
                    return Outcome(
                        Result.DEFERRED, None, f"the relay could not be reached: {reason}"
                    )
        return Outcome(Result.DEFERRED, None, "the relay could not be reached")

    async def _send(self, envelope: Envelope) -> Outcome:
        if self._writer is None:
            raise ConnectionError("not connected")
        commands = [f"MAIL FROM:<{envelope.sender}>", f"RCPT TO:<{envelope.recipient}>", "DATA"]
        replies: list[tuple[int, str]] = []
        if self._pipelining:
            self._writer.write("".join(f"{c}\r\n" for c in commands).encode())
            replies = [await self._reply() for _ in commands]
        else:
            for command in commands:
                self._writer.write(command.encode() + b"\r\n")
                replies.append(await self._reply())
                if replies[-1][0] >= TEMPORARY:
                    break
        refused = next(((c, r) for c, r in replies if c >= TEMPORARY), None)
        if replies[-1][0] == _START_DATA:
            # Pipelined, the relay may take DATA after refusing the recipient: end it empty.
            self._writer.write(b".\r\n" if refused else _dot_stuffed(envelope.data))
            code, reply = await self._reply()
            refused = refused or ((code, reply) if code >= TEMPORARY else None)
        elif refused is None:
            raise ConnectionError(f"the relay answered DATA with {replies[-1][0]}")
        if refused is not None:
            self._writer.write(b"RSET\r\n")
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

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        found = None
        while self._idle and found is None:
            candidate = self._idle.pop()
            if candidate.usable():
                found = candidate
        found = found or Connection(self.settings)
        try:
            yield found
        finally:
            self._idle.append(found)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()
