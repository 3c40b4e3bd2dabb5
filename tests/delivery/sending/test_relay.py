"""SMTP to a real server on loopback: many messages a connection, replies classified, drops survived."""

import uuid
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from delivery.sending.message import Envelope
from delivery.sending.relay import Pool, RelaySettings, Result
from tests.support.proxy import free_port


class _Relay:
    """Accepts mail, except for recipients whose local part names a reply code."""

    def __init__(self) -> None:
        self.accepted: list[tuple[str, list[str]]] = []
        self.sessions = 0

    async def ehlo(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
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
        self.accepted.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    # aiosmtpd finds its hooks by these names.
    handle_EHLO, handle_RCPT, handle_DATA = ehlo, rcpt, data  # noqa: N815


@pytest.fixture
def relay():
    handler = _Relay()
    port = free_port()
    server = Controller(handler, hostname="127.0.0.1", port=port)
    server.start()
    yield handler, port, server
    if server._thread is not None:
        server.stop()


def _envelope(to: str) -> Envelope:
    data = b"From: news@shop.example\r\nTo: " + to.encode() + b"\r\nSubject: hi\r\n\r\nHello\r\n"
    return Envelope("b-x@bounces.shop.example", to, data, f"<{uuid.uuid4()}@shop.example>")


def test_many_messages_go_over_one_kept_connection(relay):
    handler, port, _ = relay
    pool = Pool(RelaySettings("127.0.0.1", port))
    with pool.connection() as connection:
        results = [connection.send(_envelope(f"p{i}@example.org")).result for i in range(50)]
    pool.close()
    assert results == [Result.SENT] * 50
    assert len(handler.accepted) == 50
    assert handler.sessions == 1
    assert handler.accepted[0] == ("b-x@bounces.shop.example", ["p0@example.org"])


def test_temporary_and_permanent_refusals_defer_and_bounce_and_the_connection_goes_on(relay):
    handler, port, _ = relay
    pool = Pool(RelaySettings("127.0.0.1", port))
    with pool.connection() as connection:
        deferred = connection.send(_envelope("code451@example.org"))
        bounced = connection.send(_envelope("code550@example.org"))
        after = connection.send(_envelope("fine@example.org"))
    pool.close()
    assert (deferred.result, deferred.code) == (Result.DEFERRED, 451)
    assert (bounced.result, bounced.code) == (Result.BOUNCED, 550)
    assert "told to refuse" in bounced.reply
    assert after.result is Result.SENT
    assert [to for _, to in handler.accepted] == [["fine@example.org"]]


def test_a_relay_that_went_away_is_reconnected_and_a_dead_one_defers(relay):
    handler, port, server = relay
    pool = Pool(RelaySettings("127.0.0.1", port))
    with pool.connection() as connection:
        assert connection.send(_envelope("a@example.org")).result is Result.SENT
        server.stop()
        down = connection.send(_envelope("b@example.org"))
        assert down.result is Result.DEFERRED
        assert down.code is None
        again = Controller(handler, hostname="127.0.0.1", port=port)
        again.start()
        try:
            assert connection.send(_envelope("c@example.org")).result is Result.SENT
        finally:
            again.stop()
    pool.close()
    assert [to for _, to in handler.accepted] == [["a@example.org"], ["c@example.org"]]
