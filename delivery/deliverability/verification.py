"""Verifying a sending domain: its DNS checks, kept with the status they give, and audited.

Every lookup has a time limit (`Resolver.timeout`), so a slow DNS server
holds the unit of work that long at most. A change of status
is audited, so a domain that starts failing leaves a trace of when and why.
A DKIM key seen published starts signing, and the key it replaces retires.
"""

from dataclasses import dataclass
from typing import cast
from uuid import UUID

from consent import audit
from delivery.deliverability import dns_checks
from delivery.deliverability.dns_model import DomainStatus
from delivery.sending import domains
from domain.uow import UnitOfWork


@dataclass(frozen=True)
class Resolver:
    """Where the checks ask (`DNS_RESOLVER`, `host:port`; the system's when None), how long."""

    server: str | None
    timeout: float
    relay_ip: str | None = None


async def verify(
    uow: UnitOfWork,
    actor: audit.Actor,
    domain_id: UUID,
    dns: domains.DnsSettings,
    resolver: Resolver,
) -> domains.SendingDomain:
    """Check the domain's records now and keep what was found, in the caller's unit of work."""
    before = await domains.get(uow, domain_id)
    expectation = dns_checks.expectation_for(before, dns, resolver.relay_ip)
    found = await dns_checks.check_domain(
        expectation, resolver=resolver.server, timeout=resolver.timeout
    )
    current = await domains.get(uow, domain_id, for_update=True)
    previous = cast("DomainStatus", current.status)
    status = found.status(previous)
    for selector in sorted(found.published_selectors):
        await domains.mark_published(uow, domain_id, selector)
    await domains.record_checks(
        uow, domain_id, status=status, checks=[r.as_dict() for r in found.results]
    )
    if status != previous:
        failing = [r.name for r in found.results if r.status == "FAIL"]
        await audit.record(
            uow, actor, "sending_domain.status_changed", object_type=domains.DOMAIN_TYPE,
            object_id=domain_id,
            details={"domain": current.domain, "from": previous, "to": status,
                     "failing": failing},
        )  # fmt: skip
    return await domains.get(uow, domain_id)
