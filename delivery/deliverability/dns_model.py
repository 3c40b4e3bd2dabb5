"""What the DNS checks of a sending domain expect, and what they report.

A check PASSes, WARNs or FAILs. A check whose lookups the DNS server did not
answer in time is a WARN marked `inconclusive`: it says nothing about the
records, so it neither verifies a domain nor fails it. A domain FAILs if any
check FAILs; it is VERIFIED when none does and every check got its answers;
otherwise it keeps the status it had.
"""

import ipaddress
from dataclasses import dataclass
from typing import Literal

from delivery.sending.domains import spf_mechanism

Status = Literal["PASS", "WARN", "FAIL"]
DomainStatus = Literal["PENDING", "VERIFIED", "FAILING"]


@dataclass(frozen=True)
class DkimExpectation:
    """A DKIM key's record. `signing` is False for a key that waits, after a rotation, to be
    seen in DNS while the older key still signs: its record missing is a WARN, not a FAIL."""

    selector: str
    value: str  # `dkim.dns_value(...)`: what the TXT record must hold
    signing: bool = True


@dataclass(frozen=True)
class Expectation:
    """What a sending domain's records must say for the relay to send as it.

    `relay_ip` is the address the relay sends from, when known: SPF may then
    authorize it by `ip4:`/`ip6:`, `a` or `mx`, and its reverse DNS is checked.
    """

    domain: str
    dkim: tuple[DkimExpectation, ...]
    relay_host: str
    return_path_host: str
    spf_include: str | None = None
    relay_ip: str | None = None

    def __post_init__(self) -> None:
        if self.relay_ip is not None:
            ipaddress.ip_address(self.relay_ip)  # ValueError now rather than in the middle of a run

    @property
    def bounce_domain(self) -> str:
        """The envelope sender's domain (`message.return_path`), where receivers check SPF."""
        return f"bounces.{self.domain}"

    @property
    def spf_term(self) -> str:
        return spf_mechanism(self.relay_host, self.spf_include)

    @property
    def spf_value(self) -> str:
        return f"v=spf1 {self.spf_term} ~all"

    @property
    def dmarc_value(self) -> str:
        return f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{self.domain}"

    @property
    def mx_value(self) -> str:
        return f"10 {self.return_path_host}"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    found: str | None = None
    expected: str | None = None
    fix: str | None = None
    inconclusive: bool = False  # the DNS did not answer: the status is not a verdict on records

    def as_dict(self) -> dict[str, str | None]:
        """The fields of the GraphQL `DnsCheck`, as stored with the domain."""
        return {"name": self.name, "status": self.status, "found": self.found,
                "expected": self.expected, "fix": self.fix}  # fmt: skip


def record_name(name: str, domain: str) -> str:
    """A record's name, and how most DNS providers' forms want it: without the domain."""
    label = "@" if name == domain else name.removesuffix(f".{domain}")
    return f"{name} (in most DNS providers' forms the name is {label})"


def unanswered(name: str, message: str, expected: str | None = None) -> CheckResult:
    return CheckResult(
        name, "WARN", None, expected,
        f"{message} This says nothing about your records; check again in a few minutes.",
        inconclusive=True,
    )  # fmt: skip


@dataclass(frozen=True)
class DomainCheck:
    results: tuple[CheckResult, ...]
    published_selectors: frozenset[str]  # DKIM selectors whose record matches the key

    def status(self, previous: DomainStatus = "PENDING") -> DomainStatus:
        if any(r.status == "FAIL" for r in self.results):
            return "FAILING"
        if any(r.inconclusive for r in self.results):
            return previous
        return "VERIFIED"
