"""SMTP to the relay over kept-open connections, and what each reply means for a delivery.

A worker sends many messages per connection: a new TCP and TLS handshake
per message would cost more than the message. Each reply is classified
for the delivery: 2xx SENT, 4xx DEFERRED (try again later), 5xx BOUNCED
(with the reply). A connection that drops is opened again once for the
message in hand; if that fails too, the message is DEFERRED, never lost
and never marked sent unless the relay accepted it.
"""

import smtplib
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from delivery.sending.message import Envelope

TIMEOUT = 30.0  # seconds for any one SMTP exchange
MESSAGES_PER_CONNECTION = 500  # relays limit this; a fresh connection now and then is cheap
TEMPORARY = 400
PERMANENT = 500


class Tls(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class Result(StrEnum):
    SENT = "SENT"
    DEFERRED = "DEFERRED"
    BOUNCED = "BOUNCED"


@dataclass(frozen=True)
class RelaySettings:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: Tls = Tls.NONE


@dataclass(frozen=True)
class Outcome:
    result: Result
    code: int | None
    reply: str


def _classify(code: int, reply: bytes | str) -> Outcome:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    if code >= PERMANENT:
        return Outcome(Result.BOUNCED, code, text)
    if code >= TEMPORARY:
        return Outcome(Result.DEFERRED, code, text)
    return Outcome(Result.SENT, code, text)


@dataclass
class Connection:
    """One SMTP session, opened on first use and kept for the next messages."""

    settings: RelaySettings
    smtp: smtplib.SMTP | None = None
    sent: int = 0

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        if s.tls is Tls.TLS:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.host, s.port, timeout=TIMEOUT, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=TIMEOUT)
            if s.tls is Tls.STARTTLS:
                smtp.starttls(context=ssl.create_default_context())
        if s.username:
            smtp.login(s.username, s.password or "")
        return smtp

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
            self.smtp = None
            self.sent = 0

    def send(self, envelope: Envelope) -> Outcome:
        """Hand one message to the relay; what the relay said."""
        for attempt in range(2):
            try:
                if self.smtp is None:
                    self.smtp = self._open()
                return self._send(self.smtp, envelope)
            except (
                smtplib.SMTPServerDisconnected,
                ConnectionError,
                TimeoutError,
                OSError,
            ) as error:
                self.close()
                if attempt:
                    return Outcome(
                        Result.DEFERRED, None, f"the relay could not be reached: {error}"
                    )
            except smtplib.SMTPResponseException as error:
                # Refused while connecting (a greeting or a login refused).
                self.close()
                return _classify(error.smtp_code, error.smtp_error)
        return Outcome(Result.DEFERRED, None, "the relay could not be reached")

    def _send(self, smtp: smtplib.SMTP, envelope: Envelope) -> Outcome:
        try:
            refused = smtp.sendmail(envelope.sender, [envelope.recipient], envelope.data)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = error.recipients[envelope.recipient]
            smtp.rset()
            return _classify(code, reply)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            smtp.rset()
            return _classify(error.smtp_code, error.smtp_error)
        if refused:  # not for one recipient, but smtplib's contract allows it
            code, reply = refused[envelope.recipient]
            return _classify(code, reply)
        self.sent += 1
        if self.sent >= MESSAGES_PER_CONNECTION:
            self.close()
        return Outcome(Result.SENT, 250, "accepted")


@dataclass
class Pool:
    """The connections of one worker process, one per thread that sends."""

    settings: RelaySettings
    _idle: list[Connection] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        with self._lock:
            found = self._idle.pop() if self._idle else Connection(self.settings)
        try:
            yield found
        finally:
            with self._lock:
                self._idle.append(found)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
