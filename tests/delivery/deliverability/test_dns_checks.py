"""The DNS checks of a sending domain against a local DNS server: published records verify,
missing or wrong ones fail with a fix, and a server that never answers gives warnings in time."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from delivery.deliverability.dns_checks import (
    CheckResult,
    DomainCheck,
    Expectation,
    check_domain,
    expectation_for,
)
from delivery.deliverability.dns_lookup import parse_server
from delivery.sending import dkim, domains
from delivery.sending.domains import DkimKey, DnsSettings, SendingDomain
from tests.support.dns_server import DnsServer, Records, SilentServer

DOMAIN = "shop.example"
RELAY_IP = "192.0.2.10"
SETTINGS = DnsSettings(
    relay_host="relay.cdp.example",
    return_path_host="inbound.cdp.example",
    spf_include="_spf.cdp.example",
)
RSA = dkim.generate("rsa-sha256")
NEW_RSA = dkim.generate("rsa-sha256")
NOW = datetime(2026, 1, 5, tzinfo=UTC)


def _key(selector: str, pair: dkim.KeyPair, *, age: int, published: bool) -> DkimKey:
    created = NOW - timedelta(days=age)
    return DkimKey(selector, pair.algorithm, pair.public_b64, created,
                   created if published else None, None)  # fmt: skip


def _domain(*keys: DkimKey) -> SendingDomain:
    return SendingDomain(uuid4(), DOMAIN, "PENDING", [], None, NOW, keys)


ONE_KEY = _domain(_key("cdp1", RSA, age=10, published=False))
EXPECTED = expectation_for(ONE_KEY, SETTINGS, RELAY_IP)


def _published(domain: SendingDomain = ONE_KEY) -> Records:
    """What `domains.records` asks for, plus what lies outside the user's zone (the relay's
    include, its address and reverse DNS), and SPF at the return path, where receivers
    evaluate it."""
    zone: Records = {}
    for record in domains.records(domain, SETTINGS):
        zone.setdefault((record.name, record.type), []).append(record.value)
    zone[(f"bounces.{DOMAIN}", "TXT")] = [f"v=spf1 include:{SETTINGS.spf_include} ~all"]
    zone[("_spf.cdp.example", "TXT")] = ["v=spf1 ip4:192.0.2.0/24 -all"]
    zone[("relay.cdp.example", "A")] = [RELAY_IP]
    zone[("10.2.0.192.in-addr.arpa", "PTR")] = ["relay.cdp.example"]
    return zone


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer(_published()) as server:
        yield server


async def _check(server: DnsServer, e: Expectation = EXPECTED, timeout: float = 3) -> DomainCheck:
    return await check_domain(e, resolver=server.address, timeout=timeout)


def _result(check: DomainCheck, name: str) -> CheckResult:
    found = [r for r in check.results if r.name == name]
    assert len(found) == 1, [r.name for r in check.results]
    return found[0]


def _statuses(check: DomainCheck) -> dict[str, str]:
    return {r.name: r.status for r in check.results}


async def test_published_records_verify(dns: DnsServer) -> None:
    check = await _check(dns)

    assert _statuses(check) == {
        "SPF": "PASS", "SPF return path": "PASS", "DKIM cdp1": "PASS", "DMARC": "PASS",
        "DKIM alignment": "PASS", "SPF alignment": "PASS", "Return-path MX": "PASS",
        "PTR": "PASS",
    }  # fmt: skip
    assert check.published_selectors == {"cdp1"}
    assert check.status() == "VERIFIED"
    assert all(r.fix is None for r in check.results)
    dmarc = _result(check, "DMARC")
    assert dmarc.found is not None
    assert dmarc.found.startswith("p=none (monitoring only")
    assert _result(check, "PTR").found == f"{RELAY_IP} → relay.cdp.example → {RELAY_IP}"


def test_the_expectation_matches_the_records_we_ask_for() -> None:
    asked = {(r.type, r.name): r.value for r in domains.records(ONE_KEY, SETTINGS)}

    assert asked[("TXT", DOMAIN)] == EXPECTED.spf_value
    assert asked[("TXT", f"_dmarc.{DOMAIN}")] == EXPECTED.dmarc_value
    assert asked[("MX", EXPECTED.bounce_domain)] == EXPECTED.mx_value
    assert asked[("TXT", f"cdp1._domainkey.{DOMAIN}")] == EXPECTED.dkim[0].value
    assert EXPECTED.dkim[0].signing


async def test_a_dkim_record_split_into_strings_with_spaces_verifies(dns: DnsServer) -> None:
    value = EXPECTED.dkim[0].value.replace("; ", ";  ")
    dns.records[(f"cdp1._domainkey.{DOMAIN}", "TXT")] = [(value[:200], value[200:300], value[300:])]

    check = await _check(dns)

    assert _result(check, "DKIM cdp1").status == "PASS"


async def test_no_spf_record_fails_with_the_record_to_add(dns: DnsServer) -> None:
    del dns.records[(DOMAIN, "TXT")]

    spf = _result(await _check(dns), "SPF")

    assert spf.status == "FAIL"
    assert spf.found is None
    assert spf.fix == (
        f"Add a TXT record at {DOMAIN} (in most DNS providers' forms the name is @) with the "
        "value: v=spf1 include:_spf.cdp.example ~all"
    )


async def test_two_spf_records_fail_with_the_merged_record(dns: DnsServer) -> None:
    dns.records[(DOMAIN, "TXT")] = [
        "v=spf1 include:_spf.google.com -all", "v=spf1 include:_spf.cdp.example ~all",
        "google-site-verification=abc",
    ]  # fmt: skip
    dns.records[("_spf.google.com", "TXT")] = ["v=spf1 ip4:198.51.100.0/24 ~all"]

    check = await _check(dns)
    spf = _result(check, "SPF")

    assert spf.status == "FAIL"
    assert spf.expected == "v=spf1 include:_spf.google.com include:_spf.cdp.example -all"
    assert spf.fix is not None
    assert "has 2 SPF records" in spf.fix
    assert spf.fix.endswith(str(spf.expected))
    assert check.status() == "FAILING"


async def test_spf_that_does_not_authorize_the_relay_fails(dns: DnsServer) -> None:
    dns.records[(DOMAIN, "TXT")] = ["v=spf1 mx include:_spf.google.com ~all"]
    dns.records[("_spf.google.com", "TXT")] = ["v=spf1 ip4:198.51.100.0/24 ~all"]

    spf = _result(await _check(dns), "SPF")

    assert spf.status == "FAIL"
    assert spf.expected == "v=spf1 mx include:_spf.google.com include:_spf.cdp.example ~all"
    assert spf.fix is not None
    assert "does not let our relay send" in spf.fix


async def test_spf_that_softfails_the_include_fails(dns: DnsServer) -> None:
    dns.records[(DOMAIN, "TXT")] = ["v=spf1 ~include:_spf.cdp.example -all"]

    spf = _result(await _check(dns), "SPF")

    assert spf.status == "FAIL"
    assert spf.fix is not None
    assert "`~include:_spf.cdp.example` matches it first" in spf.fix
    assert spf.expected == "v=spf1 include:_spf.cdp.example -all"


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 ip4:192.0.2.0/28 -all",  # the relay's address
        "v=spf1 a:relay.cdp.example -all",  # the relay's host
        "v=spf1 include:_spf.other.example -all",  # through a nested include
        "v=spf1 redirect=_spf.other.example",
        "v=spf1 mx -all",  # the relay is the domain's MX host
    ],
)
async def test_spf_authorizes_the_relay_in_other_ways(dns: DnsServer, record: str) -> None:
    dns.records[(DOMAIN, "TXT")] = [record]
    dns.records[("_spf.other.example", "TXT")] = ["v=spf1 include:_spf.cdp.example ~all"]
    dns.records[(DOMAIN, "MX")] = ["10 relay.cdp.example"]

    assert _result(await _check(dns), "SPF").status == "PASS"


async def test_spf_that_lets_anyone_send_warns(dns: DnsServer) -> None:
    dns.records[(DOMAIN, "TXT")] = ["v=spf1 +all"]

    spf = _result(await _check(dns), "SPF")

    assert spf.status == "WARN"
    assert spf.expected == "v=spf1 include:_spf.cdp.example ~all"


async def test_spf_over_ten_lookups_through_nested_includes_fails(dns: DnsServer) -> None:
    dns.records[(DOMAIN, "TXT")] = ["v=spf1 include:_spf.cdp.example include:a.example -all"]
    dns.records[("a.example", "TXT")] = ["v=spf1 include:b.example a mx exists:x.a.example ~all"]
    b = "v=spf1 a:one.example a:two.example mx:b.example include:c.example ~all"
    dns.records[("b.example", "TXT")] = [b]
    dns.records[("c.example", "TXT")] = ["v=spf1 a mx ptr ~all"]

    spf = _result(await _check(dns), "SPF")

    assert spf.status == "FAIL"
    assert spf.fix is not None
    assert "needs 13 DNS lookups" in spf.fix
    assert "include:a.example (12)" in spf.fix


async def test_an_endless_chain_of_includes_stops_and_fails(dns: DnsServer) -> None:
    dns.records[(DOMAIN, "TXT")] = ["v=spf1 include:_spf.cdp.example include:n0.example -all"]
    for n in range(30):
        dns.records[(f"n{n}.example", "TXT")] = [f"v=spf1 include:n{n + 1}.example ~all"]

    spf = _result(await _check(dns), "SPF")

    assert spf.status == "FAIL"
    assert spf.fix is not None
    assert "DNS lookups" in spf.fix


async def test_spf_errors_fail(dns: DnsServer) -> None:
    dns.records[(DOMAIN, "TXT")] = [
        "v=spf1 include:_spf.cdp.example include:gone.example ip4:300.1.1.1 ~all"
    ]

    spf = _result(await _check(dns), "SPF")

    assert spf.status == "FAIL"
    assert spf.fix is not None
    assert "`ip4:300.1.1.1` is not a valid address or range" in spf.fix
    assert "gone.example, which the record refers to, has no SPF record" in spf.fix


async def test_spf_missing_at_the_return_path_fails(dns: DnsServer) -> None:
    del dns.records[(f"bounces.{DOMAIN}", "TXT")]

    check = await _check(dns)
    spf = _result(check, "SPF return path")

    assert spf.status == "FAIL"
    assert spf.fix == (
        f"Add a TXT record at bounces.{DOMAIN} (in most DNS providers' forms the name is bounces) "
        "with the value: v=spf1 include:_spf.cdp.example ~all"
    )
    assert _result(check, "SPF").status == "PASS"


async def test_a_dkim_key_mismatch_fails(dns: DnsServer) -> None:
    dns.records[(f"cdp1._domainkey.{DOMAIN}", "TXT")] = [NEW_RSA.dns_value()]

    check = await _check(dns)
    key = _result(check, "DKIM cdp1")

    assert key.status == "FAIL"
    assert key.found == NEW_RSA.dns_value()
    assert key.expected == RSA.dns_value()
    assert key.fix is not None
    assert "not the one we sign with" in key.fix
    assert (
        f"cdp1._domainkey.{DOMAIN} (in most DNS providers' forms the name is cdp1._domainkey)"
        in key.fix
    )
    assert key.fix.endswith(RSA.dns_value())
    assert check.published_selectors == frozenset()
    assert _result(check, "DKIM alignment").status == "FAIL"


async def test_a_dkim_key_cut_short_says_so(dns: DnsServer) -> None:
    dns.records[(f"cdp1._domainkey.{DOMAIN}", "TXT")] = [RSA.dns_value()[:255]]

    key = _result(await _check(dns), "DKIM cdp1")

    assert key.status == "FAIL"
    assert key.fix is not None
    assert "The key is cut short" in key.fix


async def test_a_new_key_after_rotation_warns_until_published_then_is_reported() -> None:
    rotated = _domain(_key("cdp1", RSA, age=10, published=True),
                      _key("cdp2", NEW_RSA, age=1, published=False))  # fmt: skip
    e = expectation_for(rotated, SETTINGS, RELAY_IP)
    zone = _published(rotated)
    del zone[(f"cdp2._domainkey.{DOMAIN}", "TXT")]
    with DnsServer(zone) as server:
        before = await _check(server, e)
        server.records.update(_published(rotated))
        after = await _check(server, e)

    assert [k.signing for k in e.dkim] == [True, False]
    assert _result(before, "DKIM cdp2").status == "WARN"
    assert before.published_selectors == {"cdp1"}
    assert before.status() == "VERIFIED"
    assert _result(after, "DKIM cdp2").status == "PASS"
    assert after.published_selectors == {"cdp1", "cdp2"}


async def test_missing_dmarc_fails_with_the_record_to_add(dns: DnsServer) -> None:
    del dns.records[(f"_dmarc.{DOMAIN}", "TXT")]

    dmarc = _result(await _check(dns), "DMARC")

    assert dmarc.status == "FAIL"
    assert dmarc.fix is not None
    assert dmarc.fix.startswith(f"Add a TXT record at _dmarc.{DOMAIN} (in most DNS providers' "
                                "forms the name is _dmarc) with the value: v=DMARC1; p=none; "
                                f"rua=mailto:dmarc-reports@{DOMAIN}.")  # fmt: skip


@pytest.mark.parametrize("record", ["v=DMARC1 p=none", "v=DMARC1; p=block", "p=none; v=DMARC1"])
async def test_unparseable_dmarc_fails(dns: DnsServer, record: str) -> None:
    dns.records[(f"_dmarc.{DOMAIN}", "TXT")] = [record]

    dmarc = _result(await _check(dns), "DMARC")

    assert dmarc.status == "FAIL"
    assert dmarc.found == record
    assert dmarc.fix is not None
    assert "cannot be read" in dmarc.fix


async def test_two_dmarc_records_fail(dns: DnsServer) -> None:
    dns.records[(f"_dmarc.{DOMAIN}", "TXT")] = ["v=DMARC1; p=none", "v=DMARC1; p=reject"]

    dmarc = _result(await _check(dns), "DMARC")

    assert dmarc.status == "FAIL"
    assert dmarc.fix is not None
    assert "has 2 DMARC records" in dmarc.fix


async def test_a_subdomain_takes_the_organizational_domains_policy() -> None:
    sub = Expectation(f"mail.{DOMAIN}", EXPECTED.dkim, SETTINGS.relay_host,
                      SETTINGS.return_path_host, SETTINGS.spf_include)  # fmt: skip
    with DnsServer({(f"_dmarc.{DOMAIN}", "TXT"): ["v=DMARC1; p=reject; sp=quarantine"]}) as server:
        dmarc = _result(await _check(server, sub), "DMARC")

    assert dmarc.status == "PASS"
    assert dmarc.found is not None
    assert dmarc.found.startswith(
        f"p=quarantine (mail that fails DMARC goes to spam, from the sp= of _dmarc.{DOMAIN})"
    )


async def test_strict_spf_alignment_warns_while_dkim_aligns(dns: DnsServer) -> None:
    record = f"v=DMARC1; p=reject; aspf=s; rua=mailto:dmarc-reports@{DOMAIN}"
    dns.records[(f"_dmarc.{DOMAIN}", "TXT")] = [record]

    check = await _check(dns)
    aligned = _result(check, "SPF alignment")

    assert aligned.status == "WARN"
    assert aligned.fix is not None
    assert aligned.fix.endswith(f"v=DMARC1; p=reject; rua=mailto:dmarc-reports@{DOMAIN}")
    assert _result(check, "DMARC").status == "PASS"
    assert _result(check, "DKIM alignment").status == "PASS"


async def test_strict_spf_alignment_fails_when_dkim_does_not_align(dns: DnsServer) -> None:
    dns.records[(f"_dmarc.{DOMAIN}", "TXT")] = ["v=DMARC1; p=reject; adkim=s; aspf=s"]
    del dns.records[(f"cdp1._domainkey.{DOMAIN}", "TXT")]

    check = await _check(dns)

    assert _result(check, "SPF alignment").status == "FAIL"
    assert _result(check, "DKIM alignment").status == "FAIL"


async def test_strict_dkim_alignment_still_aligns(dns: DnsServer) -> None:
    dns.records[(f"_dmarc.{DOMAIN}", "TXT")] = ["v=DMARC1; p=quarantine; adkim=s"]

    aligned = _result(await _check(dns), "DKIM alignment")

    assert aligned.status == "PASS"
    assert aligned.found == f"d={DOMAIN} signs mail From {DOMAIN} (adkim=s)"


async def test_missing_return_path_mx_fails(dns: DnsServer) -> None:
    del dns.records[(f"bounces.{DOMAIN}", "MX")]

    mx = _result(await _check(dns), "Return-path MX")

    assert mx.status == "FAIL"
    assert mx.fix is not None
    assert mx.fix.startswith(
        f"Add an MX record at bounces.{DOMAIN} (in most DNS providers' forms the name is "
        "bounces) with priority 10 and the value inbound.cdp.example."
    )


async def test_a_return_path_mx_elsewhere_fails_and_an_extra_one_warns(dns: DnsServer) -> None:
    dns.records[(f"bounces.{DOMAIN}", "MX")] = ["10 mx.mailhost.example"]
    wrong = _result(await _check(dns), "Return-path MX")
    dns.records[(f"bounces.{DOMAIN}", "MX")] = ["10 inbound.cdp.example", "20 mx.mailhost.example"]
    extra = _result(await _check(dns), "Return-path MX")

    assert wrong.status == "FAIL"
    assert wrong.found == "10 mx.mailhost.example"
    assert extra.status == "WARN"
    assert extra.fix is not None
    assert "(mx.mailhost.example)" in extra.fix


async def test_reverse_dns_that_does_not_point_back_warns(dns: DnsServer) -> None:
    dns.records[("10.2.0.192.in-addr.arpa", "PTR")] = ["host-10.isp.example"]

    check = await _check(dns)
    ptr = _result(check, "PTR")

    assert ptr.status == "WARN"
    assert not ptr.inconclusive
    assert ptr.fix is not None
    assert "Add an A record for host-10.isp.example with the value 192.0.2.10" in ptr.fix
    assert check.status() == "VERIFIED"


async def test_missing_reverse_dns_warns(dns: DnsServer) -> None:
    del dns.records[("10.2.0.192.in-addr.arpa", "PTR")]

    ptr = _result(await _check(dns), "PTR")

    assert ptr.status == "WARN"
    assert ptr.found is None


async def test_reverse_dns_is_skipped_when_the_relay_address_is_unknown(dns: DnsServer) -> None:
    e = expectation_for(ONE_KEY, SETTINGS)

    check = await _check(dns, e)

    assert "PTR" not in _statuses(check)
    assert check.status() == "VERIFIED"


async def test_changed_records_are_seen_at_once(dns: DnsServer) -> None:
    first = await _check(dns)
    dns.records[(DOMAIN, "TXT")] = ["v=spf1 -all"]
    second = await _check(dns)

    assert _result(first, "SPF").status == "PASS"
    assert _result(second, "SPF").status == "FAIL"


async def test_an_unresponsive_server_warns_within_the_time_limit() -> None:
    silent = SilentServer()
    limit = 1.0
    started = time.monotonic()
    try:
        check = await check_domain(EXPECTED, resolver=silent.address, timeout=limit)
    finally:
        silent.close()
    elapsed = time.monotonic() - started

    assert elapsed < limit + 0.5
    assert {r.status for r in check.results} == {"WARN"}
    assert all(r.inconclusive for r in check.results)
    assert len(check.results) == 8
    assert check.published_selectors == frozenset()
    spf = _result(check, "SPF")
    assert spf.fix is not None
    assert "did not answer" in spf.fix
    assert check.status() == "PENDING"
    assert check.status("VERIFIED") == "VERIFIED"


async def test_a_resolver_named_by_host_works(dns: DnsServer) -> None:
    check = await check_domain(EXPECTED, resolver=f"localhost:{dns.port}", timeout=3)

    assert check.status() == "VERIFIED"


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("10.0.0.2", ("10.0.0.2", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
        ("unbound:53", ("unbound", 53)),
    ],
)
def test_resolver_addresses_parse(spec: str, parsed: tuple[str, int]) -> None:
    assert parse_server(spec) == parsed


@pytest.mark.parametrize("spec", ["", ":53", "127.0.0.1:", "127.0.0.1:dns", "[::1", "h:70000"])
def test_bad_resolver_addresses_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_server(spec)


def test_a_relay_address_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        expectation_for(ONE_KEY, SETTINGS, "relay.cdp.example")
