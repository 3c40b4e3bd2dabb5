"""Sending domains: the DKIM keys that sign for them, and the DNS records to publish.

Adding a domain makes its first DKIM key pair (RSA-2048; and Ed25519 as a
second signature when `DKIM_ED25519` is on). Private keys are stored
sealed (`sealing.py`). A rotation adds a key under a new selector; the old
one keeps signing until the new record is seen in DNS (`mark_published`,
which the DNS checks call), then it retires.
"""

import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import idna
from sqlalchemy import select, update

from consent import audit
from delivery.sending import dkim, sealing
from delivery.sending.tables import dkim_keys, sending_domains
from domain.errors import ConflictError, NotFoundError, ValidationError
from domain.ids import new_id
from domain.uow import UnitOfWork

DOMAIN_TYPE = "sending_domain"
MAX_DOMAINS = 50  # a workspace's sending domains
ALGORITHMS: tuple[dkim.Algorithm, ...] = ("rsa-sha256", "ed25519-sha256")


@dataclass(frozen=True)
class DnsRecord:
    type: str
    name: str
    value: str


@dataclass(frozen=True)
class DnsSettings:
    """What the records point at: the relay, and where bounces come back."""

    relay_host: str
    return_path_host: str
    spf_include: str | None = None
    ed25519: bool = False


@dataclass(frozen=True)
class DkimKey:
    selector: str
    algorithm: dkim.Algorithm
    public_key: str
    created_at: datetime
    published_at: datetime | None
    retired_at: datetime | None


@dataclass(frozen=True)
class SendingDomain:
    id: UUID
    domain: str
    status: str
    checks: list[dict[str, Any]]
    checked_at: datetime | None
    created_at: datetime
    keys: tuple[DkimKey, ...]

    def current(self, algorithm: dkim.Algorithm) -> DkimKey | None:
        """The key that signs now: the newest one seen in DNS, else the first one made."""
        live = sorted(
            (k for k in self.keys if k.algorithm == algorithm and k.retired_at is None),
            key=lambda k: k.created_at,
        )
        published = [k for k in live if k.published_at is not None]
        if published:
            return published[-1]
        return live[0] if live else None

    def to_publish(self) -> list[DkimKey]:
        """Every key that signs now or will once it is seen: the records to keep in DNS."""
        return sorted(
            (k for k in self.keys if k.retired_at is None),
            key=lambda k: (k.algorithm, k.created_at),
        )

    @property
    def selector(self) -> str:
        found = self.current("rsa-sha256")
        return found.selector if found else ""


def normalize(raw: str) -> str:
    """The domain as DNS knows it (IDNA, lower case), or ValidationError."""
    cleaned = raw.strip().rstrip(".").lower()
    try:
        ascii_name = idna.encode(cleaned, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise ValidationError(f"not a domain name: {error}", field="domain") from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253:  # noqa: PLR2004 - a name and a TLD at least
        raise ValidationError("a sending domain has at least a name and a top-level domain",
                              field="domain")  # fmt: skip
    if labels[-1].isdigit():
        raise ValidationError("a sending domain is a name, not an IP address", field="domain")
    return ascii_name


def spf_mechanism(relay_host: str, spf_include: str | None) -> str:
    """The SPF term that lets the relay send: its include, its address, or its host's."""
    if spf_include:
        return f"include:{spf_include}"
    try:
        address = ipaddress.ip_address(relay_host)
    except ValueError:
        return f"a:{relay_host}"
    return f"ip{address.version}:{address}"


def records(domain: SendingDomain, dns: DnsSettings) -> list[DnsRecord]:
    """What to publish: each DKIM key, SPF for the relay, DMARC, and the return path's MX."""
    found = [
        DnsRecord("TXT", f"{key.selector}._domainkey.{domain.domain}",
                  dkim.dns_value(key.algorithm, key.public_key))
        for key in domain.to_publish()
    ]  # fmt: skip
    spf = spf_mechanism(dns.relay_host, dns.spf_include)
    found += [
        DnsRecord("TXT", domain.domain, f"v=spf1 {spf} ~all"),
        # Receivers check SPF at the envelope sender's domain: the return path's.
        DnsRecord("TXT", f"bounces.{domain.domain}", f"v=spf1 {spf} ~all"),
        DnsRecord("TXT", f"_dmarc.{domain.domain}",
                  f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain.domain}"),
        DnsRecord("MX", f"bounces.{domain.domain}", f"10 {dns.return_path_host}"),
    ]  # fmt: skip
    return found


def _selector(now: datetime, algorithm: dkim.Algorithm) -> str:
    suffix = "e" if algorithm == "ed25519-sha256" else ""
    return f"cdp{now:%Y%m}{secrets.token_hex(2)}{suffix}"


async def _add_key(uow: UnitOfWork, secret: str, domain_id: UUID, algorithm: dkim.Algorithm) -> str:
    pair = dkim.generate(algorithm)
    now = uow.clock.now()
    selector = _selector(now, algorithm)
    await uow.execute(
        dkim_keys.insert().values(
            workspace_id=uow.workspace_id, domain_id=domain_id, selector=selector,
            algorithm=algorithm, public_key=pair.public_b64, created_at=now,
            private_key=sealing.seal(secret, uow.workspace_id, pair.private_pem),
        )
    )  # fmt: skip
    return selector


async def add(
    uow: UnitOfWork, actor: audit.Actor, secret: str, raw_domain: str, *, ed25519: bool
) -> SendingDomain:
    domain = normalize(raw_domain)
    existing = await list_all(uow)
    if any(d.domain == domain for d in existing):
        raise ConflictError(f"{domain} is a sending domain of this workspace already",
                            field="domain")  # fmt: skip
    if len(existing) >= MAX_DOMAINS:
        raise ValidationError(f"a workspace has at most {MAX_DOMAINS} sending domains",
                              field="domain")  # fmt: skip
    domain_id = new_id()
    await uow.execute(
        sending_domains.insert().values(
            workspace_id=uow.workspace_id, id=domain_id, domain=domain,
            created_at=uow.clock.now(),
        )
    )  # fmt: skip
    selectors = [await _add_key(uow, secret, domain_id, "rsa-sha256")]
    if ed25519:
        selectors.append(await _add_key(uow, secret, domain_id, "ed25519-sha256"))
    await audit.record(
        uow, actor, "sending_domain.added", object_type=DOMAIN_TYPE, object_id=domain_id,
        details={"domain": domain, "selectors": selectors},
    )  # fmt: skip
    return await get(uow, domain_id)


async def rotate(
    uow: UnitOfWork, actor: audit.Actor, secret: str, domain_id: UUID, *, ed25519: bool
) -> SendingDomain:
    """A new key under a new selector for each algorithm in use; the old keys sign until then."""
    current = await get(uow, domain_id, for_update=True)
    algorithms = {k.algorithm for k in current.keys if k.retired_at is None}
    if ed25519:
        algorithms.add("ed25519-sha256")
    selectors = [await _add_key(uow, secret, domain_id, a) for a in ALGORITHMS if a in algorithms]
    await audit.record(
        uow, actor, "sending_domain.key_rotated", object_type=DOMAIN_TYPE, object_id=domain_id,
        details={"domain": current.domain, "selectors": selectors},
    )  # fmt: skip
    return await get(uow, domain_id)


async def mark_published(uow: UnitOfWork, domain_id: UUID, selector: str) -> None:
    """The key's record was seen in DNS: it signs from now on, and the older keys of its
    algorithm retire."""
    now = uow.clock.now()
    k = dkim_keys
    rows = await uow.execute(
        update(k)
        .where(k.c.workspace_id == uow.workspace_id, k.c.domain_id == domain_id,
               k.c.selector == selector, k.c.published_at.is_(None))
        .values(published_at=now)
        .returning(k.c.algorithm, k.c.created_at)
    )  # fmt: skip
    found = rows.first()
    if found is None:
        return
    await uow.execute(
        update(k)
        .where(k.c.workspace_id == uow.workspace_id, k.c.domain_id == domain_id,
               k.c.algorithm == found.algorithm, k.c.created_at < found.created_at,
               k.c.retired_at.is_(None))
        .values(retired_at=now)
    )  # fmt: skip


async def record_checks(
    uow: UnitOfWork, domain_id: UUID, *, status: str, checks: list[dict[str, Any]]
) -> None:
    """Keep the latest DNS checks and the status they give (deliverability's checks)."""
    await uow.execute(
        update(sending_domains)
        .where(sending_domains.c.workspace_id == uow.workspace_id,
               sending_domains.c.id == domain_id)
        .values(status=status, checks=checks, checked_at=uow.clock.now())
    )  # fmt: skip


async def list_all(uow: UnitOfWork) -> list[SendingDomain]:
    rows = await uow.execute(
        select(sending_domains.c.id).where(sending_domains.c.workspace_id == uow.workspace_id)
    )
    found = await get_many(uow, [row.id for row in rows])
    return sorted(found.values(), key=lambda d: d.domain)


async def get(uow: UnitOfWork, domain_id: UUID, *, for_update: bool = False) -> SendingDomain:
    if for_update:
        await uow.execute(
            select(sending_domains.c.id)
            .where(sending_domains.c.workspace_id == uow.workspace_id,
                   sending_domains.c.id == domain_id)
            .with_for_update()
        )  # fmt: skip
    found = await get_many(uow, [domain_id])
    if domain_id not in found:
        raise NotFoundError("no such sending domain", field="id")
    return found[domain_id]


async def get_many(uow: UnitOfWork, ids: Sequence[UUID]) -> dict[UUID, SendingDomain]:
    if not ids:
        return {}
    d, k = sending_domains, dkim_keys
    domains = await uow.execute(
        select(d).where(d.c.workspace_id == uow.workspace_id, d.c.id.in_(list(ids)))
    )
    keys = await uow.execute(
        select(k.c.domain_id, k.c.selector, k.c.algorithm, k.c.public_key, k.c.created_at,
               k.c.published_at, k.c.retired_at)
        .where(k.c.workspace_id == uow.workspace_id, k.c.domain_id.in_(list(ids)))
    )  # fmt: skip
    by_domain: dict[UUID, list[DkimKey]] = {}
    for row in keys:
        by_domain.setdefault(row.domain_id, []).append(
            DkimKey(row.selector, row.algorithm, row.public_key, row.created_at,
                    row.published_at, row.retired_at)
        )  # fmt: skip
    return {
        row.id: SendingDomain(
            row.id,
            row.domain,
            row.status,
            list(row.checks),
            row.checked_at,
            row.created_at,
            tuple(sorted(by_domain.get(row.id, []), key=lambda key: key.created_at)),
        )
        for row in domains
    }


_signers: dict[tuple[UUID, UUID, tuple[str, ...]], list[dkim.Signer]] = {}


async def signers(uow: UnitOfWork, secret: str, domain: SendingDomain) -> list[dkim.Signer]:
    """The signers of the keys that sign now, RSA first; loaded once per process and key."""
    chosen = [key for a in ALGORITHMS if (key := domain.current(a)) is not None]
    if not chosen:
        return []
    cache_key = (uow.workspace_id, domain.id, tuple(k.selector for k in chosen))
    if cache_key in _signers:
        return _signers[cache_key]
    k = dkim_keys
    rows = await uow.execute(
        select(k.c.selector, k.c.private_key).where(
            k.c.workspace_id == uow.workspace_id, k.c.domain_id == domain.id,
            k.c.selector.in_([key.selector for key in chosen]),
        )
    )  # fmt: skip
    sealed = {row.selector: row.private_key for row in rows}
    found = _signers[cache_key] = [
        dkim.Signer.load(domain.domain, key.selector, key.algorithm,
                         sealing.unseal(secret, uow.workspace_id, sealed[key.selector]))
        for key in chosen
    ]  # fmt: skip
    return found
