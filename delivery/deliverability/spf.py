"""SPF: a name's record, the records it includes, the DNS lookups they cost, and whether they
let the relay send.

Receivers treat as an error (permerror, as good as no SPF) two SPF records at
one name, a term they cannot parse, an include of a name without exactly one
SPF record, and more than 10 terms that need DNS (include, a, mx, ptr,
exists, redirect) across a record and everything it includes (RFC 7208
sections 4.5, 4.6.4 and 5.2). The relay is authorized when the first term
that matches it, in evaluation order, has the `+` qualifier.

The records are fetched here with the run's own resolver (`dns_lookup`), not
by checkdmarc: its SPF parser resolves includes itself through a
process-wide cache keyed by name alone, kept for half an hour, so a record
the user has just fixed would read as broken, answers from one DNS server
would serve another, and every run would write state that other threads read.
"""

import asyncio
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from delivery.deliverability.dns_lookup import Lookup
from delivery.deliverability.dns_model import CheckResult, Expectation, Status, record_name

MAX_LOOKUPS = 10
MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
QUALIFIERS = "+-~?"
_MODIFIER = re.compile(r"([a-z][a-z0-9_.-]*)=(.*)", re.IGNORECASE)


@dataclass(frozen=True)
class Term:
    qualifier: str
    name: str  # lower case: a mechanism, or a modifier such as redirect
    value: str  # what follows `:` or `=`, with any /cidr
    text: str  # as written

    def target(self, current: str) -> str:
        """The domain an include, a, mx, ptr, exists or redirect names (the record's own by
        default), lower case, without /cidr."""
        domain = self.value.split("/", 1)[0] if self.name in ("a", "mx") else self.value
        return (domain or current).rstrip(".").lower()


def is_spf(text: str) -> bool:
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def parse(record: str) -> tuple[tuple[Term, ...], tuple[str, ...]]:
    """The terms of a record and what is wrong with its syntax."""
    terms: list[Term] = []
    errors: list[str] = []
    for token in record.split()[1:]:
        term = _term(token)
        error = _error(term) if term else f"`{token}` is not an SPF term"
        if term and not error:
            terms.append(term)
        else:
            errors.append(error or f"`{token}` is not an SPF term")
    return tuple(terms), tuple(errors)


def _term(token: str) -> Term | None:
    modifier = _MODIFIER.fullmatch(token)
    if modifier and modifier[1].lower() not in MECHANISMS:
        return Term("", modifier[1].lower(), modifier[2], token)
    qualifier = token[0] if token[0] in QUALIFIERS else ""
    rest = token[len(qualifier) :]
    name = rest.split(":", 1)[0].split("/", 1)[0]
    if name.lower() not in MECHANISMS:
        return None
    return Term(qualifier or "+", name.lower(), rest[len(name) :].removeprefix(":"), token)


def _error(term: Term) -> str | None:
    if term.qualifier == "":
        needed = term.name in ("redirect", "exp") and not term.value
        return f"`{term.text}` needs a domain after the =" if needed else None
    if term.name == "all" and term.value:
        return f"`{term.text}`: all takes no value"
    if term.name in ("include", "exists", "ip4", "ip6") and not term.value:
        return f"`{term.text}` needs a value after the colon"
    if term.name in ("ip4", "ip6"):
        try:
            network = ipaddress.ip_network(term.value, strict=False)
        except ValueError:
            return f"`{term.text}` is not a valid address or range"
        if network.version != int(term.name[-1]):
            return f"`{term.text}` is not an IPv{term.name[-1]} address"
    return None


@dataclass(frozen=True)
class SpfRecord:
    """A name's SPF records as fetched, and, when there is exactly one, what it refers to."""

    domain: str
    records: tuple[str, ...]
    terms: tuple[Term, ...] = ()
    errors: tuple[str, ...] = ()
    included: dict[str, "SpfRecord"] = field(default_factory=dict)  # include/redirect targets
    loops: tuple[str, ...] = ()  # targets that include a record on the way to them
    addresses: dict[int, tuple[str, ...]] = field(default_factory=dict)  # a/mx term index

    def evaluated(self) -> Iterator[tuple[int, Term]]:
        """The terms receivers evaluate, in order: none after `all`, and a redirect only when
        there is no `all`."""
        has_all = any(t.name == "all" for t in self.terms)
        for index, term in enumerate(self.terms):
            if term.qualifier or (term.name == "redirect" and not has_all):
                yield index, term
            if term.name == "all":
                return


class _Budget:
    """Fetches left for one run: past 11 includes the count is over the limit whatever else
    they hold, and a chain of includes must not grow without end."""

    def __init__(self) -> None:
        self.left = MAX_LOOKUPS + 1

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


async def fetch(lookup: Lookup, domain: str, relay_ip: str | None) -> SpfRecord:
    return await _fetch(lookup, domain.lower(), relay_ip, (), _Budget())


async def _fetch(
    lookup: Lookup, domain: str, relay_ip: str | None, path: tuple[str, ...], budget: _Budget
) -> SpfRecord:
    records = tuple(t for t in await lookup.txt(domain) if is_spf(t))
    if len(records) != 1:
        return SpfRecord(domain, records)
    terms, errors = parse(records[0])
    record = SpfRecord(domain, records, terms, errors)
    path = (*path, domain)
    targets = list(dict.fromkeys(
        t.target(domain) for _, t in record.evaluated()
        if t.name in ("include", "redirect") and "%" not in t.value
    ))  # fmt: skip
    loops = tuple(t for t in targets if t in path)
    wanted = [t for t in targets if t not in path and budget.take()]
    children = await asyncio.gather(*(_fetch(lookup, t, relay_ip, path, budget) for t in wanted))
    addresses = await _addresses(lookup, record, relay_ip) if relay_ip else {}
    return SpfRecord(domain, records, terms, errors, dict(zip(wanted, children, strict=True)),
                     loops, addresses)  # fmt: skip


async def _addresses(
    lookup: Lookup, record: SpfRecord, relay_ip: str
) -> dict[int, tuple[str, ...]]:
    """The addresses of each a and mx term, to see whether one is the relay's."""
    wanted = [(i, t) for i, t in record.evaluated() if t.name in ("a", "mx") and "%" not in t.value]

    async def resolve(term: Term) -> tuple[str, ...]:
        target = term.target(record.domain)
        if term.name == "a":
            return tuple(await lookup.addresses(target))
        hosts = sorted(await lookup.mx(target))[:MAX_LOOKUPS]
        found = await asyncio.gather(*(lookup.addresses(host) for _, host in hosts))
        return tuple(a for addresses in found for a in addresses)

    resolved = await asyncio.gather(*(resolve(t) for _, t in wanted))
    return {i: found for (i, _), found in zip(wanted, resolved, strict=True)}


def lookups(record: SpfRecord) -> int:
    total = 0
    for _, term in record.evaluated():
        if term.name in LOOKUP_TERMS:
            total += 1
            child = record.included.get(term.target(record.domain))
            if term.name in ("include", "redirect") and child and len(child.records) == 1:
                total += lookups(child)
    return total


def broken(record: SpfRecord, via: str = "") -> list[str]:
    """Why receivers would treat the record, or one it includes, as an error."""
    where = f" (reached through {via})" if via else ""
    problems = [f"{e}{where}" for e in record.errors]
    problems += [
        f"{t} leads back to a record that refers to it, a loop{where}" for t in record.loops
    ]
    for target, child in record.included.items():
        if len(child.records) != 1:
            count = "no SPF record" if not child.records else f"{len(child.records)} SPF records"
            problems.append(f"{target}, which the record refers to, has {count}{where}")
        else:
            problems += broken(child, f"{via} > {target}" if via else target)
    return problems


@dataclass(frozen=True)
class Match:
    qualifier: str
    text: str  # the term that matched


def match(record: SpfRecord, e: Expectation) -> Match | None:
    """The first term that matches the relay, as a receiver evaluating the record finds it."""
    for index, term in record.evaluated():
        child = record.included.get(term.target(record.domain))
        usable = child if child and len(child.records) == 1 else None
        if term.name == "redirect":
            return match(usable, e) if usable else None
        if term.name == "include":
            named = e.spf_include is not None and term.target("") == e.spf_include.lower()
            nested = match(usable, e) if usable and not named else None
            matched = named or (nested is not None and nested.qualifier == "+")
        else:
            matched = _matches(record, index, term, e)
        if matched:
            return Match(term.qualifier, term.text)
    return None


def _matches(record: SpfRecord, index: int, term: Term, e: Expectation) -> bool:
    if term.name == "all":
        return True
    if term.name == "a" and term.target(record.domain) == e.relay_host.lower():
        return True
    if e.relay_ip is None:
        return False
    if term.name in ("ip4", "ip6"):
        return _within(e.relay_ip, term.value)
    if term.name in ("a", "mx"):
        cidr = _cidr(term.value, ipaddress.ip_address(e.relay_ip).version)
        return any(_within(e.relay_ip, f"{a}{cidr}") for a in record.addresses.get(index, ()))
    return False


def _cidr(value: str, version: int) -> str:
    """The a/mx prefix length for the relay's IP version: `a:host/24//64` has /24 and /64."""
    head, _, v6 = value.partition("//")
    v4 = head.partition("/")[2]
    length = v4 if version == 4 else v6  # noqa: PLR2004 - the IP version
    return f"/{length}" if length else ""


def _within(address: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def with_term(record: str, term: str, ending: str | None = None) -> str:
    """The record with `term` in it once, as a pass, before `all` or a redirect; and with
    `ending` as its `all`, if given."""
    bare = term.lower()
    tokens = [t for t in record.split() if t.lstrip(QUALIFIERS).lower() != bare]
    if ending:
        tokens = [ending if _is_all(t) else t for t in tokens]
    at = next((i for i, t in enumerate(tokens) if _is_all(t) or _is_redirect(t)), len(tokens))
    return " ".join([*tokens[:at], term, *tokens[at:]])


def _is_all(token: str) -> bool:
    return token.lstrip(QUALIFIERS).lower() == "all"


def _is_redirect(token: str) -> bool:
    return token.lower().startswith("redirect=")


def merged(records: tuple[str, ...], term: str) -> str:
    """One record with the terms of several: a redirect becomes an include, and the first
    `all` ends it (~all if that one lets anyone send)."""
    terms: dict[str, str] = {}
    ending: str | None = None
    for record in records:
        for token in record.split()[1:]:
            if _is_all(token):
                ending = ending or token
            else:
                kept = f"include:{token.split('=', 1)[1]}" if _is_redirect(token) else token
                terms.setdefault(kept.lower(), kept)
    if ending is None or ending.lstrip("+").lower() == "all":
        ending = "~all"
    return with_term(" ".join(["v=spf1", *terms.values(), ending]), term)


def check(name: str, spf: SpfRecord, e: Expectation) -> CheckResult:
    """The verdict on the SPF record at `spf.domain`."""
    at = record_name(spf.domain, e.domain)
    if not spf.records:
        return CheckResult(name, "FAIL", None, e.spf_value,
                           f"Add a TXT record at {at} with the value: {e.spf_value}")  # fmt: skip
    if len(spf.records) > 1:
        suggested = merged(spf.records, e.spf_term)
        return CheckResult(
            name, "FAIL", " | ".join(spf.records), suggested,
            f"{spf.domain} has {len(spf.records)} SPF records, and receivers then ignore SPF "
            f"altogether. Merge them into one: delete the TXT records at {at} that start "
            f"with v=spf1 and add a single one with the value: {suggested}",
        )  # fmt: skip
    record = spf.records[0]
    problems: list[tuple[Status, str]] = []
    errors = broken(spf)
    if errors:
        problems.append(("FAIL", (
            f"Receivers cannot use this SPF record: {'; '.join(errors)}. Correct the TXT "
            f"record at {at}; if the error is in a record you include, remove that include "
            "or ask its owner to correct it."
        )))  # fmt: skip
    count = lookups(spf)
    if count > MAX_LOOKUPS:
        costs = ", ".join(f"{t.text} ({_cost(spf, t)})" for _, t in spf.evaluated()
                          if t.name in LOOKUP_TERMS)  # fmt: skip
        problems.append(("FAIL", (
            f"The record needs {count} DNS lookups; receivers stop at {MAX_LOOKUPS} and treat "
            f"it as an error. Lookups by term: {costs}. Remove the includes of services you "
            "no longer send through, or replace a and mx terms with ip4:/ip6: addresses."
        )))  # fmt: skip
    found = match(spf, e)
    suggested = record
    if found is None or found.qualifier != "+":
        suggested = with_term(record, e.spf_term)
        refused = f" `{found.text}` matches it first and refuses it." if found else ""
        problems.append(("FAIL", (
            f"The record does not let our relay send.{refused} Edit the TXT record at {at} "
            f"so that it has {e.spf_term} before the all: {suggested}"
        )))  # fmt: skip
    elif _is_all(found.text):
        suggested = with_term(record, e.spf_term, ending="~all")
        problems.append(("WARN", (
            f"The record ends in {found.text}, which lets any server in the world send as "
            f"{e.domain}. Edit the TXT record at {at} so that it reads: {suggested}"
        )))  # fmt: skip
    statuses = {s for s, _ in problems}
    status: Status = "FAIL" if "FAIL" in statuses else "WARN" if statuses else "PASS"
    return CheckResult(name, status, record, suggested, " ".join(f for _, f in problems) or None)


def _cost(spf: SpfRecord, term: Term) -> int:
    child = spf.included.get(term.target(spf.domain))
    nested = lookups(child) if term.name in ("include", "redirect") and child else 0
    return 1 + nested
