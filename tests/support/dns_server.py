"""A small authoritative DNS server for tests, on UDP and TCP at 127.0.0.1, and one that never
answers.

Records live in a dict keyed by (name, type), which tests may change between
checks: `server.records[("shop.example", "TXT")] = ["v=spf1 -all"]`. A TXT
value is a string (cut into 255-byte strings as DNS requires) or a tuple of
the strings to publish; MX values read "10 host"; A, AAAA and PTR values are
an address or a name. A name with records of other types answers with none;
a name without records does not exist. UDP answers over 512 bytes come back
truncated, so that resolvers retry over TCP as they do on the Internet.
"""

import socket
import threading
from types import TracebackType
from typing import Self

from dnslib import AAAA, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

Value = str | tuple[str, ...]
Records = dict[tuple[str, str], list[Value]]
TXT_STRING = 255
UDP_SIZE = 512


class _Handler(DNSHandler):
    """Truncates long UDP answers keeping the question, which dnslib's own truncation drops
    and resolvers then reject."""

    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        packed = reply.pack()
        if self.protocol == "udp" and len(packed) > UDP_SIZE:
            truncated = request.reply()
            truncated.header.tc = 1
            return bytes(truncated.pack())
        return bytes(packed)


class _Zone(BaseResolver):
    def __init__(self, records: Records) -> None:
        self.records = records

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        snapshot = dict(self.records)
        for value in snapshot.get((name, kind), []):
            reply.add_answer(
                RR(request.q.qname, request.q.qtype, rdata=_rdata(kind, value), ttl=60)
            )
        if not any(n == name for n, _ in snapshot):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def _rdata(kind: str, value: Value) -> object:
    if kind == "TXT":
        data = value.encode() if isinstance(value, str) else b""
        chunks = [data[i : i + TXT_STRING] for i in range(0, len(data), TXT_STRING)]
        return TXT(list(value) if isinstance(value, tuple) else chunks or [b""])
    assert isinstance(value, str)
    if kind == "MX":
        preference, host = value.split()
        return MX(host, int(preference))
    return {"A": A, "AAAA": AAAA, "PTR": PTR}[kind](value)


class DnsServer:
    """Answers from `records` on 127.0.0.1:`port`, UDP and TCP, from a thread of its own."""

    def __init__(self, records: Records | None = None) -> None:
        self.records: Records = records if records is not None else {}
        self._servers: list[DNSServer] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        zone = _Zone(self.records)
        logger = DNSLogger(logf=lambda _: None)
        for _ in range(20):  # the UDP port may be taken for TCP: try another
            udp = DNSServer(zone, "127.0.0.1", 0, logger=logger, handler=_Handler)
            self.port = int(udp.server.server_address[1])
            try:
                tcp = DNSServer(zone, "127.0.0.1", self.port, tcp=True, logger=logger)
            except OSError:
                udp.server.server_close()
                continue
            self._servers = [udp, tcp]
            for server in self._servers:
                # A short poll, so that stopping takes milliseconds rather than half a second.
                threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.02},
                                 daemon=True).start()  # fmt: skip
            return self
        raise RuntimeError("no free port for both UDP and TCP")

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SilentServer:
    """A UDP port that takes queries and never answers them."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"

    def close(self) -> None:
        self._socket.close()
