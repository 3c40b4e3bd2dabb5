"""SMTP to a real server on loopback: many messages a connection, replies classified, drops
survived, pipelined where offered, STARTTLS and a login."""

import asyncio
import datetime as dt
import ipaddress
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from delivery.sending import relay as relay_module
from delivery.sending.message import Envelope
from delivery.sending.relay import Connection, Pool, RelaySettings, Result, Tls
from tests.support.proxy import free_port


class _Relay:
    """Accepts mail, except for recipients whose local part names a reply code.

    `pipelining` makes it offer PIPELINING; it reads pipelined commands one
    by one either way, as a real server does.
    """

    def __init__(self, *, pipelining: bool = False) -> None:
        self.accepted: list[tuple[str, list[str], bytes]] = []
        self.sessions = 0
        self.pipelining = pipelining
        self.logins: list[tuple[str, bytes]] = []

    async def ehlo(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def rcpt(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        local = address.partition("@")[0]
        if local.startswith("code"):
            return f"{local[4:]} 5.1.1 told to refuse this one"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def data(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        self.logins.append((mechanism, data.login))
        ok = data.login == b"shop" and data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535

    # aiosmtpd finds its hooks by these names.
    handle_EHLO, handle_RCPT, handle_DATA = ehlo, rcpt, data  # noqa: N815


def _serve(handler: _Relay, port: int, **options: Any) -> Controller:
    server = Controller(handler, hostname="127.0.0.1", port=port, **options)
    server.start()
    return server


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelined"])
def relay(request: Any) -> Iterator[tuple[_Relay, int, Controller]]:
    handler = _Relay(pipelining=request.param)
    port = free_port()
    server = _serve(handler, port)
    yield handler, port, server
    if server._thread is not None:
        server.stop()


def _envelope(to: str, body: bytes = b"Hello\r\n") -> Envelope:
    data = b"From: news@shop.example\r\nTo: " + to.encode() + b"\r\nSubject: hi\r\n\r\n" + body
    return Envelope("b-x@bounces.shop.example", to, data, f"<{uuid.uuid4()}@shop.example>")


def test_many_messages_go_over_one_kept_connection(relay):
    handler, port, _ = relay
    pool = Pool(RelaySettings("127.0.0.1", port))
    # A line of a lone dot and a leading dot must arrive as they were sent.
    body = b"line one\r\n.\r\n.dotted\r\nend\r\n"

    async def send() -> list[Result]:
        async with pool.connection() as connection:
            found = [(await connection.send(_envelope(f"p{i}@example.org", body))).result
                     for i in range(50)]  # fmt: skip
        await pool.close()
        return found

    assert asyncio.run(send()) == [Result.SENT] * 50
    assert len(handler.accepted) == 50
    assert handler.sessions == 1
    sender, to, content = handler.accepted[0]
    assert (sender, to) == ("b-x@bounces.shop.example", ["p0@example.org"])
    assert content.endswith(b"\r\n\r\n" + body)


def test_temporary_and_permanent_refusals_defer_and_bounce_and_the_connection_goes_on(relay):
    handler, port, _ = relay
    pool = Pool(RelaySettings("127.0.0.1", port))

    async def send() -> list[Any]:
        async with pool.connection() as connection:
            found = [await connection.send(_envelope(to)) for to in
                     ("code451@example.org", "code550@example.org", "fine@example.org")]  # fmt: skip
        await pool.close()
        return found

    deferred, bounced, after = asyncio.run(send())
    assert (deferred.result, deferred.code) == (Result.DEFERRED, 451)
    assert (bounced.result, bounced.code) == (Result.BOUNCED, 550)
    assert "told to refuse" in bounced.reply
    assert after.result is Result.SENT
    assert [to for _, to, _ in handler.accepted] == [["fine@example.org"]]
    assert handler.sessions == 1


def test_a_relay_that_went_away_is_reconnected_and_a_dead_one_defers(relay):
    handler, port, server = relay
    pool = Pool(RelaySettings("127.0.0.1", port))

    async def send() -> None:
        async with pool.connection() as connection:
            assert (await connection.send(_envelope("a@example.org"))).result is Result.SENT
            server.stop()
            down = await connection.send(_envelope("b@example.org"))
            assert down.result is Result.DEFERRED
            assert down.code is None
            assert "could not be reached" in down.reply
            again = _serve(handler, port)
            try:
                assert (await connection.send(_envelope("c@example.org"))).result is Result.SENT
            finally:
                again.stop()
        await pool.close()

    asyncio.run(send())
    assert [to for _, to, _ in handler.accepted] == [["a@example.org"], ["c@example.org"]]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_kept_connection_the_relay_closed_is_opened_again(relay, loop):
    handler, port, server = relay
    pool = Pool(RelaySettings("127.0.0.1", port))

    async def send() -> list[Result]:
        results = []
        async with pool.connection() as connection:
            results.append((await connection.send(_envelope("a@example.org"))).result)
        server.stop()  # closes the kept connection while it sits in the pool
        again = _serve(handler, port)
        try:
            await asyncio.sleep(0.1)
            async with pool.connection() as connection:
                results.append((await connection.send(_envelope("b@example.org"))).result)
        finally:
            await pool.close()
            again.stop()
        return results

    assert (uvloop.run(send()) if loop == "uvloop" else asyncio.run(send())) == [Result.SENT] * 2
    assert handler.sessions == 2


async def _silent_after_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A relay that greets, answers EHLO, then reads and never answers again."""
    writer.write(b"220 relay.test ESMTP\r\n")
    await reader.readline()
    writer.write(b"250-relay.test\r\n250 PIPELINING\r\n")
    while await reader.read(4096):
        pass
    writer.close()


def test_a_relay_gone_silent_is_given_up_on_and_the_message_deferred(monkeypatch):
    monkeypatch.setattr(relay_module, "TIMEOUT", 0.4)

    async def send() -> tuple[Any, float]:
        server = await asyncio.start_server(_silent_after_hello, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connection = Connection(RelaySettings("127.0.0.1", port))
        started = asyncio.get_running_loop().time()
        try:
            outcome = await connection.send(_envelope("a@example.org"))
        finally:
            await connection.close()
            server.close()
        return outcome, asyncio.get_running_loop().time() - started

    outcome, took = asyncio.run(send())
    assert outcome.result is Result.DEFERRED
    assert "did not answer within" in outcome.reply
    assert took < 3.0  # two tries, each given up on after its timeout


def test_a_pool_used_from_a_new_event_loop_opens_a_new_connection(relay):
    handler, port, _ = relay
    pool = Pool(RelaySettings("127.0.0.1", port))

    async def one(to: str) -> Result:
        async with pool.connection() as connection:
            return (await connection.send(_envelope(to))).result

    assert asyncio.run(one("a@example.org")) is Result.SENT
    assert asyncio.run(one("b@example.org")) is Result.SENT
    assert handler.sessions == 2


def _certificate(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: the server's context and a client's trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "relay.pem", directory / "relay.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))


def test_starttls_and_a_login_before_the_mail(tmp_path):
    server_context, client_context = _certificate(tmp_path)
    handler = _Relay(pipelining=True)
    port = free_port()
    server = _serve(handler, port, tls_context=server_context, require_starttls=True,
                    authenticator=handler.authenticate, auth_required=True)  # fmt: skip

    def settings(password: str) -> RelaySettings:
        return RelaySettings("127.0.0.1", port, "shop", password, Tls.STARTTLS, client_context)

    async def send(password: str) -> Any:
        connection = Connection(settings(password))
        try:
            return await connection.send(_envelope("a@example.org"))
        finally:
            await connection.close()

    try:
        sent = asyncio.run(send("s3cret"))
        refused = asyncio.run(send("wrong"))
    finally:
        server.stop()
    assert sent.result is Result.SENT
    assert [to for _, to, _ in handler.accepted] == [["a@example.org"]]
    assert handler.logins == [("PLAIN", b"shop"), ("PLAIN", b"shop")]
    assert (refused.result, refused.code) == (Result.BOUNCED, 535)


def test_a_relay_that_cannot_be_trusted_is_not_sent_to(tmp_path):
    server_context, _ = _certificate(tmp_path)
    handler = _Relay()
    port = free_port()
    server = _serve(handler, port, tls_context=server_context, require_starttls=True)

    async def send() -> Any:
        connection = Connection(RelaySettings("127.0.0.1", port, tls=Tls.STARTTLS))
        try:
            return await connection.send(_envelope("a@example.org"))
        finally:
            await connection.close()

    try:
        outcome = asyncio.run(send())
    finally:
        server.stop()
    assert outcome.result is Result.DEFERRED
    assert "certificate" in outcome.reply
    assert handler.accepted == []
