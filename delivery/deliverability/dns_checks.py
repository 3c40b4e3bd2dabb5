"""DNS checks of a sending domain: SPF, DKIM, DMARC, alignment, the return path's MX and the
relay's reverse DNS, each with a fix a non-expert can follow.

SPF is checked at the domain, where we ask for it, and at `bounces.<domain>`,
the envelope sender's domain, where receivers evaluate it. A DKIM selector
whose record matches its key is reported in `published_selectors`, so that a
rotation can retire the older key. Reverse DNS is checked only when the
relay's address is known: without it (a provider's relay, whose outgoing
addresses and their reverse DNS are the provider's) a warning would be one
the user can do nothing about, and one always there teaches users to ignore
warnings. It WARNs, never FAILs: it belongs to whoever owns the address, not
to the domain, and it is a reputation signal rather than an authentication.

Every check runs at once, each within the time limit; a lookup the DNS
server does not answer in time is an inconclusive WARN, so a run returns
within about the limit even when the server never answers.
"""

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from delivery.deliverability import dmarc_policy, spf
from delivery.deliverability.dns_lookup import Lookup, Unanswered
from delivery.deliverability.dns_model import (
    CheckResult,
    DkimExpectation,
    DomainCheck,
    DomainStatus,
    Expectation,
    Status,
    record_name,
    unanswered,
)
from delivery.sending import dkim
from delivery.sending.domains import DnsSettings, SendingDomain

__all__ = [
    "DEFAULT_TIMEOUT",
    "CheckResult",
    "DkimExpectation",
    "DomainCheck",
    "DomainStatus",
    "Expectation",
    "check_domain",
    "expectation_for",
]

DEFAULT_TIMEOUT = 4.0  # seconds, for each check
T = TypeVar("T")


def expectation_for(
    domain: SendingDomain, dns: DnsSettings, relay_ip: str | None = None
) -> Expectation:
    """What `domains.records` asks the user to publish, with the key that signs now told
    from one waiting to be seen after a rotation."""
    keys = tuple(
        DkimExpectation(key.selector, dkim.dns_value(key.algorithm, key.public_key),
                        signing=domain.current(key.algorithm) == key)
        for key in domain.to_publish()
    )  # fmt: skip
    if relay_ip is None:
        # A relay named by its address is known by it: SPF may authorize it as ip4:/ip6:.
        with contextlib.suppress(ValueError):
            relay_ip = str(ipaddress.ip_address(dns.relay_host))
    return Expectation(domain.domain, keys, dns.relay_host, dns.return_path_host,
                       dns.spf_include, relay_ip)  # fmt: skip


async def check_domain(
    expectation: Expectation,
    *,
    resolver: str | None,
    # A late answer must become a WARN, not a run cut off by the caller's asyncio.timeout.
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
) -> DomainCheck:
    """Every check of the domain's records, asking `resolver` (`host:port`; the system's
    resolvers when None)."""
    e = expectation
    deadline = asyncio.get_running_loop().time() + timeout
    lookup = await _bounded(deadline, timeout, Lookup.connect(resolver, timeout))
    if isinstance(lookup, Unanswered):
        return DomainCheck(tuple(unanswered(n, str(lookup)) for n in _names(e)), frozenset())

    def start(work: Awaitable[T]) -> "asyncio.Task[T | Unanswered]":
        return asyncio.create_task(_bounded(deadline, timeout, work))

    spf_own = start(spf.fetch(lookup, e.domain, e.relay_ip))
    spf_bounce = start(spf.fetch(lookup, e.bounce_domain, e.relay_ip))
    keys = [start(lookup.txt(_dkim_name(e, k))) for k in e.dkim]
    dmarc = start(dmarc_policy.fetch(lookup, e.domain))
    mx = start(lookup.mx(e.bounce_domain))
    ptr = start(_reverse(lookup, e.relay_ip)) if e.relay_ip else None
    await asyncio.gather(spf_own, spf_bounce, *keys, dmarc, mx, *([ptr] if ptr else []))

    results = [
        _judged("SPF", spf_own.result(), lambda found: spf.check("SPF", found, e)),
        _judged("SPF return path", spf_bounce.result(),
                lambda found: spf.check("SPF return path", found, e)),
    ]  # fmt: skip
    dkim_results = [
        _judged(f"DKIM {k.selector}", task.result(), partial(_dkim, e, k))
        for k, task in zip(e.dkim, keys, strict=True)
    ]
    dmarc_found = dmarc.result()
    if isinstance(dmarc_found, Unanswered):
        dmarc_result, policy = unanswered("DMARC", str(dmarc_found), e.dmarc_value), None
    else:
        dmarc_result, policy = dmarc_policy.check(dmarc_found, e)
    signing = [r for r, k in zip(dkim_results, e.dkim, strict=True) if k.signing]
    dkim_aligned = dmarc_policy.dkim_alignment(e, policy, signing)
    spf_aligned = (
        unanswered("SPF alignment", str(dmarc_found))
        if isinstance(dmarc_found, Unanswered)
        else dmarc_policy.spf_alignment(e, policy, dkim_aligned=dkim_aligned.status == "PASS")
    )
    results += [*dkim_results, dmarc_result, dkim_aligned, spf_aligned]
    results.append(_judged("Return-path MX", mx.result(), lambda hosts: _mx(e, hosts)))
    if ptr is not None and e.relay_ip:
        ip = e.relay_ip
        results.append(_judged("PTR", ptr.result(), lambda names: _ptr(e, ip, names)))
    published = frozenset(
        k.selector for k, r in zip(e.dkim, dkim_results, strict=True) if r.status == "PASS"
    )
    return DomainCheck(tuple(results), published)


async def _bounded(deadline: float, limit: float, lookups: Awaitable[T]) -> T | Unanswered:
    try:
        async with asyncio.timeout_at(deadline):
            return await lookups
    except TimeoutError:
        return Unanswered(f"The DNS server did not answer within {limit:g} second{'' if limit == 1 else 's'}.",
                          timed_out=True)  # fmt: skip
    except Unanswered as error:
        return error


def _judged(name: str, fetched: T | Unanswered, judge: Callable[[T], CheckResult]) -> CheckResult:
    return unanswered(name, str(fetched)) if isinstance(fetched, Unanswered) else judge(fetched)


def _names(e: Expectation) -> list[str]:
    names = ["SPF", "SPF return path", *(f"DKIM {k.selector}" for k in e.dkim), "DMARC",
             "DKIM alignment", "SPF alignment", "Return-path MX"]  # fmt: skip
    return [*names, "PTR"] if e.relay_ip else names


def _dkim_name(e: Expectation, key: DkimExpectation) -> str:
    return f"{key.selector}._domainkey.{e.domain}"


def _tags(text: str) -> dict[str, str]:
    """A DKIM record's tags; quotes pasted along with the value, and spaces, are ignored."""
    tags: dict[str, str] = {}
    for part in text.replace('"', "").split(";"):
        tag, equals, value = part.partition("=")
        if equals:
            tags.setdefault(tag.strip().lower(), "".join(value.split()))
    return tags


def _dkim(e: Expectation, key: DkimExpectation, texts: list[str]) -> CheckResult:
    name = f"DKIM {key.selector}"
    at = record_name(_dkim_name(e, key), e.domain)
    missing: Status = "FAIL" if key.signing else "WARN"
    waiting = "" if key.signing else (
        " This key waits to replace the one that signs now; until it is seen the current key "
        "keeps signing, then this one takes over and the old one retires."
    )  # fmt: skip
    records = [t for t in texts if "p" in _tags(t)]
    if not records:
        fix = f"Add a TXT record at {at} with the value: {key.value}.{waiting}"
        return CheckResult(name, missing, None, key.value, fix)
    if len(records) > 1:
        return CheckResult(name, missing, " | ".join(records), key.value, (
            f"There are {len(records)} DKIM records at {at}, and receivers pick any one. Delete "
            f"them all but one, whose value must be: {key.value}"
        ))  # fmt: skip
    found, wanted = _tags(records[0]), _tags(key.value)
    reason = _mismatch(found, wanted)
    if reason is None:
        return CheckResult(name, "PASS", records[0], key.value)
    fix = f"{reason} Replace the value of the TXT record at {at} with: {key.value}"
    return CheckResult(name, missing, records[0], key.value, fix)


def _mismatch(found: dict[str, str], wanted: dict[str, str]) -> str | None:
    key, expected = found.get("p", ""), wanted["p"]
    if found.get("v", "DKIM1") != "DKIM1":
        return f"The record says v={found['v']}; receivers only read v=DKIM1."
    if found.get("k", "rsa").lower() != wanted["k"]:
        return f"The record says k={found.get('k', 'rsa')}, but the key is {wanted['k']}."
    if key == expected:
        return None
    if not key:
        return "The key (p=) is empty, which tells receivers the key is revoked."
    if expected.startswith(key):
        return (
            f"The key is cut short: {len(key)} of its {len(expected)} characters. Some DNS "
            "forms cut long values; paste the whole value, or split it into quoted strings of "
            "at most 255 characters each."
        )
    return "The key (p=) is not the one we sign with: an old or mistyped copy."


def _mx(e: Expectation, hosts: list[tuple[int, str]]) -> CheckResult:
    name = "Return-path MX"
    at = record_name(e.bounce_domain, e.domain)
    target = e.return_path_host.lower().rstrip(".")
    found = ", ".join(f"{p} {h}" for p, h in sorted(hosts)) or None
    why = (
        "Bounces and complaints about your mail come back there; without it they are lost, "
        "and some receivers refuse mail whose return address cannot receive mail."
    )
    ours = [h for _, h in hosts if h == target]
    if not hosts:
        fix = f"Add an MX record at {at} with priority 10 and the value {target}. {why}"
        return CheckResult(name, "FAIL", found, e.mx_value, fix)
    if not ours:
        fix = f"Change the MX record at {at} so that it points to {target} (priority 10). {why}"
        return CheckResult(name, "FAIL", found, e.mx_value, fix)
    others = sorted({h for _, h in hosts if h != target})
    if others:
        return CheckResult(name, "WARN", found, e.mx_value, (
            f"Delete the other MX records at {at} ({', '.join(others)}): bounces delivered "
            "to them never reach us."
        ))  # fmt: skip
    return CheckResult(name, "PASS", found, e.mx_value)


async def _reverse(lookup: Lookup, address: str) -> dict[str, list[str]]:
    """Each name the address's PTR records give, with the addresses that name has."""
    names = await lookup.ptr(address)
    forward = await asyncio.gather(*(lookup.addresses(n) for n in names))
    return dict(zip(names, forward, strict=True))


def _ptr(e: Expectation, address: str, names: dict[str, list[str]]) -> CheckResult:
    ip = ipaddress.ip_address(address)
    host = e.relay_host
    confirmed = [n for n, addresses in names.items() if ip in map(ipaddress.ip_address, addresses)]
    if confirmed:
        return CheckResult("PTR", "PASS", f"{ip} → {confirmed[0]} → {ip}", host)
    if not names:
        return CheckResult("PTR", "WARN", None, host, (
            f"The address our relay sends from, {ip}, has no reverse DNS (PTR) record, and many "
            f"receivers send mail from such addresses to spam. Ask whoever runs that server (the "
            f"hosting provider, in its control panel or by a support request) to set the "
            f"reverse DNS of {ip} to {host}, and check that {host} has an A record with {ip}."
        ))  # fmt: skip
    listed = ", ".join(names)
    return CheckResult("PTR", "WARN", f"{ip} → {listed}", host, (
        f"The reverse DNS of {ip} is {listed}, but that name does not point back to {ip}, so "
        f"receivers cannot confirm it. Add an A record for {next(iter(names))} with the value "
        f"{ip}, or ask the server's provider to set the reverse DNS of {ip} to {host}."
    ))  # fmt: skip
