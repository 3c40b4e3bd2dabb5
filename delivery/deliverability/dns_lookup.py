"""DNS lookups for the domain checks, asked of the server `DNS_RESOLVER` names.

Each run builds its own dnspython resolver: the named server and port (the
system's resolvers when none is named), no cache, and a lifetime no longer
than the checks' time limit. Nothing is shared between runs or threads, and
a record the user has just fixed is seen at once. A name that does not exist
and a name without records of the type both read as "no records"; a server
that does not answer in time, or answers with an error, raises `Unanswered`,
which the checks report as a warning, never as a failure.
"""

import asyncio
import ipaddress
import socket

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.resolver
import dns.reversename
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.TXT import TXT

DEFAULT_PORT = 53
MAX_PORT = 65535
# One lost UDP datagram should cost one attempt, not the whole time limit.
ATTEMPT_SECONDS = 1.0


class Unanswered(Exception):  # noqa: N818 - it is an outcome of a lookup, not a fault in our code
    """The DNS server did not answer in time, or answered with an error."""

    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def parse_server(spec: str) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address, as (host, port)."""
    text = spec.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"not a DNS server address: {spec!r}")
        port_text: str | None = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, None
    if not host:
        raise ValueError(f"not a DNS server address: {spec!r}")
    if port_text is None:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) <= MAX_PORT:
        raise ValueError(f"not a port: {port_text!r} in {spec!r}")
    return host, int(port_text)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Lookup:
    """Queries for one run of checks; every method raises `Unanswered` or returns records."""

    def __init__(self, resolver: dns.asyncresolver.Resolver) -> None:
        self._resolver = resolver

    @classmethod
    async def connect(cls, server: str | None, lifetime: float) -> "Lookup":
        """A resolver asking `server` (`host:port`), or the system's resolvers when None."""
        if server is None:
            try:
                resolver = dns.asyncresolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                raise Unanswered("This machine has no DNS resolver configured; set DNS_RESOLVER.",
                                 timed_out=False) from None  # fmt: skip
        else:
            host, port = parse_server(server)
            address = host if _is_address(host) else await _address_of(host)
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port)]
        resolver.cache = None
        resolver.lifetime = lifetime
        resolver.timeout = min(lifetime, ATTEMPT_SECONDS)
        return cls(resolver)

    async def txt(self, name: str) -> list[str]:
        """Each TXT record as one string: its character-strings joined with nothing between."""
        answer = await self._query(name, "TXT")
        return [
            b"".join(rdata.strings).decode("utf-8", errors="replace")
            for rdata in answer
            if isinstance(rdata, TXT)
        ]

    async def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, host) pairs; the host in lower case without its final dot."""
        answer = await self._query(name, "MX")
        return [
            (rdata.preference, _host(rdata.exchange)) for rdata in answer if isinstance(rdata, MX)
        ]

    async def addresses(self, name: str) -> list[str]:
        """The A and AAAA addresses of a name."""
        v4, v6 = await asyncio.gather(self._query(name, "A"), self._query(name, "AAAA"))
        return [rdata.to_text() for rdata in [*v4, *v6]]

    async def ptr(self, address: str) -> list[str]:
        """The names the reverse zone gives an IP address."""
        answer = await self._query(dns.reversename.from_address(address).to_text(), "PTR")
        return [_host(rdata.target) for rdata in answer if isinstance(rdata, PTR)]

    async def _query(self, name: str, rdtype: str) -> list[dns.rdata.Rdata]:
        try:
            qname = dns.name.from_text(name)  # absolute: no search domains from resolv.conf
        except (dns.exception.SyntaxError, dns.name.NameTooLong):
            return []  # not a name that can exist
        try:
            answer = await self._resolver.resolve(qname, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            raise Unanswered(f"The DNS server did not answer in time for {name} ({rdtype}).",
                             timed_out=True) from None  # fmt: skip
        except (dns.exception.DNSException, OSError) as error:
            raise Unanswered(
                f"The DNS server could not answer for {name} ({rdtype}): {_reason(error)}.",
                timed_out=False,
            ) from None
        return list(answer)


async def _address_of(host: str) -> str:
    """A DNS server given by name (e.g. a container's), resolved the way the system does."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except OSError as error:
        raise Unanswered(f"The DNS server {host} could not be found: {error}.",
                         timed_out=False) from None  # fmt: skip
    # IPv4 first: `localhost` often lists ::1 first, and a server may listen on IPv4 only.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0])


def _host(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _reason(error: Exception) -> str:
    if isinstance(error, dns.resolver.NoNameservers):
        return "it refused the query or failed (SERVFAIL)"
    return str(error) or type(error).__name__
