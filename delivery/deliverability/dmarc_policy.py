"""DMARC: the policy that applies to a sending domain, and whether our mail aligns with it.

The record is looked up at `_dmarc.<domain>`, then, for a subdomain without
one, at `_dmarc.<organizational domain>` (the public suffix list decides),
whose `sp=` then applies. Several records at one name, or one that does not
parse, leave the domain with no DMARC at all. `p=none` passes the bulk-sender
rule, which asks for a record, not for enforcement.

Alignment: we sign with `d=<domain>` and send From that domain, so DKIM
aligns under strict `adkim=s` as under relaxed; it counts once a key that
signs is published. The return path is `bounces.<domain>`: it aligns under
relaxed `aspf` (same organizational domain) and never under strict. DMARC
passes when either aligns, so strict `aspf` is a WARN while DKIM aligns and a
FAIL when it does not.

checkdmarc parses the record, with a resolver that answers nothing: its
parser also looks up the report addresses' domains, which the checks do not
need, and this way nothing reaches the network and nothing is written to its
process-wide cache, which stores answers only. The record itself is fetched
with the run's own resolver (`dns_lookup`).
"""

from dataclasses import dataclass
from typing import Any

import dns.resolver
from checkdmarc.dmarc import DMARCError, parse_dmarc_record
from checkdmarc.utils import get_base_domain

from delivery.deliverability.dns_lookup import Lookup
from delivery.deliverability.dns_model import CheckResult, Expectation, record_name, unanswered

MEANINGS = {
    "none": "monitoring only: mail that fails DMARC is delivered as usual",
    "quarantine": "mail that fails DMARC goes to spam",
    "reject": "mail that fails DMARC is refused",
}


class _Offline(dns.resolver.Resolver):
    def resolve(self, *args: object, **kwargs: object) -> dns.resolver.Answer:
        raise dns.resolver.NoAnswer


_OFFLINE = _Offline(configure=False)


@dataclass(frozen=True)
class Found:
    """The DMARC records at the name that has any: the domain's, else its organization's."""

    name: str  # _dmarc.<domain or organizational domain>
    records: tuple[str, ...]
    inherited: bool


@dataclass(frozen=True)
class Policy:
    name: str
    record: str
    policy: str  # p, or sp when inherited from the organizational domain
    adkim: str
    aspf: str
    inherited: bool


async def fetch(lookup: Lookup, domain: str) -> Found:
    own = Found(f"_dmarc.{domain}", _dmarc(await lookup.txt(f"_dmarc.{domain}")), inherited=False)
    organization = get_base_domain(domain)
    if own.records or organization == domain:
        return own
    name = f"_dmarc.{organization}"
    return Found(name, _dmarc(await lookup.txt(name)), inherited=True)


def _dmarc(texts: list[str]) -> tuple[str, ...]:
    """The records meant as DMARC, whether or not they parse."""
    return tuple(t for t in texts if "v=dmarc" in t.lower())


def check(found: Found, e: Expectation) -> tuple[CheckResult, Policy | None]:
    name = "DMARC"
    if not found.records:
        return CheckResult(name, "FAIL", None, e.dmarc_value, (
            f"Add a TXT record at {record_name(f'_dmarc.{e.domain}', e.domain)} with the "
            f"value: {e.dmarc_value}. p=none only asks for reports; once they show "
            "that all your mail passes, change it to p=quarantine, then p=reject."
        )), None  # fmt: skip
    if len(found.records) > 1:
        return CheckResult(name, "FAIL", " | ".join(found.records), e.dmarc_value, (
            f"{found.name} has {len(found.records)} DMARC records, and receivers then ignore "
            f"DMARC altogether. Delete all but one of the TXT records there that start with "
            f"v=DMARC1; if unsure, keep a single one with the value: {e.dmarc_value}"
        )), None  # fmt: skip
    record = found.records[0]
    try:
        tags = _parse(record, found.name.removeprefix("_dmarc."))
    except DMARCError as error:
        return CheckResult(name, "FAIL", record, e.dmarc_value, (
            f"The DMARC record at {found.name} cannot be read ({error}), so receivers ignore "
            f"it. Correct it, or replace its value with: {e.dmarc_value}"
        )), None  # fmt: skip
    policy = Policy(found.name, record, tags["sp" if found.inherited else "p"],
                    tags["adkim"], tags["aspf"], found.inherited)  # fmt: skip
    via = f", from the sp= of {found.name}" if found.inherited else ""
    summary = f"p={policy.policy} ({MEANINGS.get(policy.policy, policy.policy)}{via}): {record}"
    return CheckResult(name, "PASS", summary, e.dmarc_value), policy


def _parse(record: str, domain: str) -> dict[str, str]:
    parsed: dict[str, Any] = parse_dmarc_record(record, domain, resolver=_OFFLINE)
    return {tag: str(details["value"]) for tag, details in parsed["tags"].items()}


def dkim_alignment(
    e: Expectation, policy: Policy | None, signing: list[CheckResult]
) -> CheckResult:
    """Aligned DKIM: d= is the From domain itself, so it only needs a published signing key."""
    name = "DKIM alignment"
    mode = policy.adkim if policy else "r"
    found = f"d={e.domain} signs mail From {e.domain} (adkim={mode})"
    expected = f"a published DKIM key for d={e.domain}"
    if any(r.status == "PASS" for r in signing):
        return CheckResult(name, "PASS", found, expected)
    if any(r.inconclusive for r in signing):
        return unanswered(name, "The DKIM records could not be looked up.", expected)
    fix = (
        "Publish the DKIM record (see the DKIM check): until receivers find the key, no "
        "signature verifies, and DMARC cannot pass through DKIM."
    )
    return CheckResult(name, "FAIL", f"{found}, but no key that signs is published", expected, fix)


def spf_alignment(e: Expectation, policy: Policy | None, *, dkim_aligned: bool) -> CheckResult:
    name = "SPF alignment"
    mode = policy.aspf if policy else "r"
    found = f"return path {e.bounce_domain} for mail From {e.domain} (aspf={mode})"
    expected = "aspf=r (relaxed, the default)"
    strict = mode == "s"
    aligned = e.bounce_domain == e.domain if strict else _organization(e.bounce_domain, e.domain)
    if aligned or policy is None:
        return CheckResult(name, "PASS", found, expected)
    fallback = (
        "DMARC still passes through DKIM, but nothing is left to fall back on when a forwarder "
        "breaks the signature."
        if dkim_aligned
        else "With DKIM not aligned either, every message fails DMARC."
    )
    return CheckResult(name, "WARN" if dkim_aligned else "FAIL", found, expected, (
        f"The DMARC record at {policy.name} asks for strict SPF alignment (aspf=s): the return "
        f"path would have to be {e.domain} itself, but ours is {e.bounce_domain}, where "
        f"bounces come back to us. {fallback} Edit the TXT record at {policy.name} and remove "
        f"aspf=s, so that it reads: {_without(policy.record, 'aspf')}"
    ))  # fmt: skip


def _organization(a: str, b: str) -> bool:
    return bool(get_base_domain(a) == get_base_domain(b))


def _without(record: str, tag: str) -> str:
    kept = [p.strip() for p in record.split(";") if p.split("=", 1)[0].strip().lower() != tag]
    return "; ".join(p for p in kept if p)
