"""Machine opens and clicks: privacy proxies, scanners, and hits too fast or too many for a person."""

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.tracking import machines
from delivery.tracking.machines import Hit, HitKind, ProxyRanges, Rules, Verdict, classify

SENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = SENT + timedelta(hours=1)
DELIVERY = uuid4()
HUMAN = Verdict(machine=False, reason=None)
RULES = Rules(ProxyRanges.builtin())

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
YAHOO = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"

APPLE_CSV = """\
ip_prefix,country,region,city,postal_code
172.224.226.0/27,GB,GB-EN,London,
172.224.226.32/31,GB,GB-EN,London,

# a comment line
2a02:26f7:b3c0:4000::/64,FR,FR-IDF,Paris,
not-an-address,US,US-CA,Cupertino,
104.28.0.0/33,US,US-CA,Los Angeles,
146.75.160.0/24,US,US-NY,New York, # trailing comment
17.0.0.0/8
"""


def _hit(
    kind: HitKind = HitKind.CLICK,
    *,
    at: datetime = LATER,
    link: int = 0,
    delivery: UUID | None = None,
    ip: str | None = "203.0.113.7",
    agent: str | None = CHROME,
) -> Hit:
    return Hit(kind, delivery or DELIVERY, link, at, ip, agent)


def _machine(reason: str, proxy: str | None = None) -> Verdict:
    return Verdict(machine=True, reason=reason, proxy=proxy)


def _human(proxy: str) -> Verdict:
    return Verdict(machine=False, reason=None, proxy=proxy)


def _one(hit: Hit, rules: Rules = RULES, sent: datetime | None = SENT) -> Verdict:
    [verdict] = classify(rules, [hit], {hit.delivery_id: sent}, {})
    return verdict


def _ms(milliseconds: int) -> timedelta:
    return timedelta(milliseconds=milliseconds)


# --- proxy ranges ---------------------------------------------------------------------------


def test_apple_owns_seventeen_slash_eight_out_of_the_box():
    ranges = ProxyRanges.builtin()
    assert ranges.proxy_of("17.0.0.0") == "apple"
    assert ranges.proxy_of("17.58.101.9") == "apple"
    assert ranges.proxy_of("17.255.255.255") == "apple"
    assert ranges.proxy_of("16.255.255.255") is None
    assert ranges.proxy_of("18.0.0.0") is None
    assert (
        ranges.proxy_of("::ffff:17.1.2.3") == "apple"
    )  # an IPv4 address seen by a dual-stack server
    assert ranges.proxy_of(" 17.1.2.3 ") == "apple"
    assert len(ranges) == 1


@pytest.mark.parametrize(
    "ip", [None, "", "not an ip", "17.1.2", "17.1.2.3/8", "999.1.1.1", "fe80::zz"]
)
def test_a_missing_or_malformed_ip_is_no_proxy(ip):
    assert ProxyRanges.builtin().proxy_of(ip) is None


def test_apples_csv_is_read_leniently():
    ranges = ProxyRanges.from_csv(APPLE_CSV)
    assert len(ranges) == 5  # the header, blank, comment and two malformed lines are skipped
    assert ranges.proxy_of("172.224.226.0") == "apple"
    assert ranges.proxy_of("172.224.226.33") == "apple"
    assert ranges.proxy_of("172.224.226.34") is None
    assert ranges.proxy_of("2a02:26f7:b3c0:4000::1") == "apple"
    assert ranges.proxy_of("2a02:26f7:b3c0:4000:ffff:ffff:ffff:ffff") == "apple"
    assert ranges.proxy_of("2a02:26f7:b3c0:4001::") is None
    assert ranges.proxy_of("146.75.160.200") == "apple"
    assert ranges.proxy_of("104.28.0.1") is None
    assert (
        ProxyRanges.from_csv("\ufeff10.0.0.0/8,XX\r\n", name="relay").proxy_of("10.9.9.9")
        == "relay"
    )
    assert len(ProxyRanges.from_csv("")) == 0


def test_merged_ranges_answer_for_both_and_the_most_specific_prefix_names_an_address():
    other = ProxyRanges.from_csv("17.5.0.0/16\n2001:db8::/32\n", name="other")
    ranges = ProxyRanges.builtin().merged(other)
    assert len(ranges) == 3
    assert ranges.proxy_of("17.5.1.1") == "other"
    assert ranges.proxy_of("17.4.255.255") == "apple"
    assert ranges.proxy_of("17.6.0.0") == "apple"
    assert ranges.proxy_of("2001:db8::1") == "other"
    assert ProxyRanges.builtin().proxy_of("17.5.1.1") == "apple"  # merging changes neither side
    assert other.proxy_of("17.4.0.0") is None


def test_a_hundred_thousand_ranges_load_and_answer():
    rng = random.Random(7)
    prefixes = {(rng.randrange(1 << 24) << 8, rng.choice((24, 28, 31))) for _ in range(60_000)}
    v6 = {(rng.randrange(1 << 48) << 80, 64) for _ in range(40_000)}
    lines = [f"{ip_address(start)}/{length},US,US-CA,Somewhere," for start, length in prefixes]
    lines += [f"{ip_address(start).compressed}/{length},DE,DE-BE,Berlin," for start, length in v6]
    ranges = ProxyRanges.from_csv("\n".join(lines))
    assert len(ranges) == len(prefixes) + len(v6)
    start, length = next(iter(prefixes))
    assert ranges.proxy_of(str(ip_address(start + (1 << (32 - length)) - 1))) == "apple"
    start, _ = next(iter(v6))
    assert ranges.proxy_of(str(ip_address(start + 12345))) == "apple"


NETWORK = st.one_of(
    st.builds(
        lambda a, n: ip_network((a, n), strict=False), st.integers(0, 2**32 - 1), st.integers(0, 32)
    ),
    st.builds(
        lambda a, n: ip_network((a, n), strict=False),
        st.integers(0, 2**128 - 1),
        st.integers(0, 128),
    ),
)
ADDRESS = st.one_of(
    st.integers(0, 2**32 - 1).map(IPv4Address), st.integers(0, 2**128 - 1).map(IPv6Address)
)


@settings(max_examples=300, deadline=None)
@given(
    networks=st.lists(
        st.tuples(NETWORK, st.sampled_from(["apple", "relay", "other"])), max_size=12
    ),
    probes=st.lists(ADDRESS, max_size=20),
)
def test_lookup_is_the_longest_matching_prefix(networks, probes):
    ranges = ProxyRanges(networks)
    for network, _ in networks:  # the ends of each range are the likeliest to go wrong
        first, last = network.network_address, network.broadcast_address
        probes += [first, last]
        probes += [first - 1] if int(first) > 0 else []
        probes += [last + 1] if last != last.__class__(2**last.max_prefixlen - 1) else []
    for probe in probes:
        mapped = probe.ipv4_mapped if isinstance(probe, IPv6Address) else None
        names = (
            _longest_match(networks, mapped) if mapped is not None else set()
        ) or _longest_match(networks, probe)
        found = ranges.proxy_of(str(probe))
        assert (found in names) if names else (found is None)


def _longest_match(networks, address) -> set[str]:
    matching = [
        (n.prefixlen, name) for n, name in networks if n.version == address.version and address in n
    ]
    longest = max((length for length, _ in matching), default=None)
    return {name for length, name in matching if length == longest}


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_proxy_of_never_raises(text):
    assert ProxyRanges.builtin().proxy_of(text) in {None, "apple"}


@settings(max_examples=300, deadline=None)
@given(address=ADDRESS, data=st.data())
def test_a_csv_prefix_covers_what_the_standard_library_says_it_covers(address, data):
    length = data.draw(st.integers(0, address.max_prefixlen))
    network = ip_network(
        (address, length), strict=False
    )  # host bits set, as lenient input may have
    ranges = ProxyRanges.from_csv(f"{address}/{length},XX,,,\n", name="relay")
    inside = [network.network_address, network.broadcast_address, address]
    assert [ranges.proxy_of(str(ip)) for ip in inside] == ["relay"] * 3
    if int(network.network_address) > 0:
        assert ranges.proxy_of(str(network.network_address - 1)) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_loads_without_raising(text):
    assert len(ProxyRanges.from_csv(text)) <= len(text.splitlines())


# --- the rules, one at a time ------------------------------------------------------------


def test_an_open_from_apples_network_is_the_privacy_proxy_but_a_click_from_it_is_a_person():
    assert _one(_hit(HitKind.OPEN, ip="17.58.1.2")) == _machine("privacy-proxy", "apple")
    assert _one(_hit(HitKind.CLICK, ip="17.58.1.2")) == HUMAN
    downloaded = Rules(ProxyRanges.builtin().merged(ProxyRanges.from_csv(APPLE_CSV)))
    assert _one(_hit(HitKind.OPEN, ip="172.224.226.5"), downloaded) == _machine(
        "privacy-proxy", "apple"
    )
    assert _one(_hit(HitKind.OPEN, ip="172.224.226.5")) == HUMAN


def test_gmail_and_yahoo_image_proxies_fetch_when_the_person_opens():
    assert _one(_hit(HitKind.OPEN, agent=GMAIL)) == _human("google")
    assert _one(_hit(HitKind.OPEN, agent=YAHOO)) == _human("yahoo")
    assert _one(_hit(HitKind.OPEN, agent=GMAIL.lower())) == _human("google")
    # The proxy is recorded when another rule makes it a machine, too.
    soon = _hit(HitKind.OPEN, agent=GMAIL, at=SENT + timedelta(seconds=1))
    assert _one(soon) == _machine("too-soon", "google")
    assert _one(_hit(HitKind.CLICK, agent=GMAIL)).proxy is None


def test_a_hit_within_two_seconds_of_the_send_is_too_soon():
    assert _one(_hit(at=SENT + _ms(1999))) == _machine("too-soon")
    assert _one(_hit(HitKind.OPEN, at=SENT + _ms(1999))) == _machine("too-soon")
    assert _one(_hit(at=SENT)) == _machine("too-soon")
    assert _one(_hit(at=SENT - _ms(300))) == _machine("too-soon")  # the tracker's clock runs behind
    assert _one(_hit(at=SENT + timedelta(seconds=2))) == HUMAN
    assert _one(_hit(at=SENT + _ms(500)), sent=None) == HUMAN  # send time unknown
    assert classify(RULES, [_hit(at=SENT)], {}, {}) == [HUMAN]
    patient = Rules(ProxyRanges.builtin(), too_soon=timedelta(seconds=30))
    assert _one(_hit(at=SENT + timedelta(seconds=20)), patient) == _machine("too-soon")


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Barracuda Sentinel)",
        "Proofpoint URL Defense",
        "Mozilla/5.0 urldefense.com",
        "MIMECAST link check",
        "Mozilla/5.0 (Windows NT 10.0) Symantec Email Security.cloud",
        "Mozilla/5.0 Trend Micro Email Security",
        "Forcepoint-Email-Security/8.5",
        "Sophos Email Time-of-Click",
        "Mozilla/5.0 (compatible; Microsoft Office Protection)",
        "Mozilla/5.0 Safelinks",
        "Bitdefender-Scanner/1.0",
        "Cisco Secure Email",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) BingPreview/1.0b",
        "MicrosoftPreview/2.0; +https://aka.ms/MicrosoftPreview",
        "Mozilla/5.0 (compatible; Google-Safety; +http://www.google.com/bot.html)",
    ],
)
def test_a_click_by_a_named_link_scanner_is_a_machine(agent):
    assert _one(_hit(agent=agent)) == _machine("scanner-agent")


@pytest.mark.parametrize(
    "agent",
    [
        None,
        "",
        "curl/8.7.1",
        "python-httpx/0.27.0",
        "python-requests/2.32.3",
        "Go-http-client/2.0",
        CHROME,
    ],
)
def test_test_tools_and_a_missing_user_agent_are_not_scanners(agent):
    assert _one(_hit(agent=agent)) == HUMAN


def test_scanner_names_only_judge_clicks():
    assert _one(_hit(HitKind.OPEN, agent="Proofpoint URL Defense")) == HUMAN


def test_clicks_on_three_links_within_a_second_are_all_machines():
    clicks = [
        _hit(link=2, at=LATER),
        _hit(link=0, at=LATER + _ms(400)),
        _hit(link=5, at=LATER + _ms(1000)),
    ]
    assert classify(RULES, clicks, {DELIVERY: SENT}, {}) == [_machine("many-links")] * 3


def test_two_links_or_three_spread_over_more_than_a_second_are_a_person():
    two = [_hit(link=1), _hit(link=2, at=LATER + _ms(10)), _hit(link=1, at=LATER + _ms(20))]
    assert classify(RULES, two, {DELIVERY: SENT}, {}) == [HUMAN] * 3
    spread = [_hit(link=0), _hit(link=1, at=LATER + _ms(600)), _hit(link=2, at=LATER + _ms(1200))]
    assert classify(RULES, spread, {DELIVERY: SENT}, {}) == [HUMAN] * 3


def test_only_the_clicks_of_the_cluster_are_machines():
    clicks = [
        _hit(link=9, at=LATER - timedelta(minutes=5)),  # read the message, clicked once
        _hit(link=0, at=LATER),
        _hit(link=1, at=LATER + _ms(500)),
        _hit(link=2, at=LATER + _ms(1000)),
        _hit(link=0, at=LATER + _ms(1800)),  # its window holds links 2 and 0 only
    ]
    reasons = [verdict.reason for verdict in classify(RULES, clicks, {DELIVERY: SENT}, {})]
    assert reasons == [None, "many-links", "many-links", "many-links", None]


def test_clicks_of_other_messages_and_opens_do_not_make_a_cluster():
    other = uuid4()
    hits = [
        _hit(link=0),
        _hit(link=1, at=LATER + _ms(100), delivery=other),
        _hit(HitKind.OPEN, at=LATER + _ms(200)),
        _hit(link=2, at=LATER + _ms(300)),
    ]
    assert classify(RULES, hits, {DELIVERY: SENT, other: SENT}, {}) == [HUMAN] * 4


def test_a_cluster_across_batches_is_caught():
    earlier = {DELIVERY: [_hit(link=0, at=LATER - _ms(300)), _hit(link=1, at=LATER - _ms(200))]}
    assert classify(RULES, [_hit(link=2)], {DELIVERY: SENT}, earlier) == [_machine("many-links")]
    assert classify(RULES, [_hit(link=2)], {DELIVERY: SENT}, {uuid4(): earlier[DELIVERY]}) == [
        HUMAN
    ]


def test_hits_beyond_five_on_one_link_within_a_second_are_a_burst():
    storm = [_hit(link=3, at=LATER + _ms(100 * step)) for step in range(7)]
    reasons = [verdict.reason for verdict in classify(RULES, storm, {DELIVERY: SENT}, {})]
    assert reasons == [None] * 5 + ["burst"] * 2


def test_opens_beyond_five_within_a_second_are_a_burst():
    opens = [_hit(HitKind.OPEN, at=LATER + _ms(50 * step)) for step in range(6)]
    reasons = [verdict.reason for verdict in classify(RULES, opens, {DELIVERY: SENT}, {})]
    assert reasons == [None] * 5 + ["burst"]


def test_a_burst_counts_the_same_link_only_and_earlier_hits_too():
    rules = Rules(ProxyRanges.builtin(), many_links=10)
    mixed = [_hit(link=step % 2, at=LATER + _ms(10 * step)) for step in range(10)]
    assert classify(rules, mixed, {DELIVERY: SENT}, {}) == [HUMAN] * 10
    earlier = {DELIVERY: [_hit(link=4, at=LATER - _ms(100 * step)) for step in range(1, 6)]}
    assert classify(rules, [_hit(link=4)], {DELIVERY: SENT}, earlier) == [_machine("burst")]
    slow = [_hit(link=4, at=LATER + _ms(300 * step)) for step in range(12)]
    assert classify(rules, slow, {DELIVERY: SENT}, {}) == [HUMAN] * 12


def test_the_first_matching_rule_gives_the_reason():
    soon = SENT + _ms(100)
    assert _one(_hit(HitKind.OPEN, ip="17.1.1.1", agent=GMAIL, at=soon)) == _machine(
        "privacy-proxy", "apple"
    )
    scanner = "Proofpoint URL Defense"
    cluster = [_hit(link=link, at=soon, agent=scanner) for link in range(3)]
    assert {v.reason for v in classify(RULES, cluster, {DELIVERY: SENT}, {})} == {"scanner-agent"}
    assert {
        v.reason for v in classify(RULES, cluster, {DELIVERY: SENT - timedelta(days=1)}, {})
    } == {"scanner-agent"}
    people = [_hit(link=link, at=soon) for link in range(3)]
    assert {v.reason for v in classify(RULES, people, {DELIVERY: SENT}, {})} == {"too-soon"}
    storm = [_hit(link=link, at=LATER + _ms(step)) for step in range(6) for link in range(3)]
    assert classify(RULES, storm, {DELIVERY: SENT}, {})[-1].reason == "many-links"


def test_verdicts_come_back_in_the_order_given():
    hits = [
        _hit(HitKind.OPEN, ip="17.2.2.2", at=LATER + _ms(900)),
        _hit(at=SENT + _ms(10)),
        _hit(HitKind.OPEN, agent=YAHOO, at=LATER - timedelta(minutes=1)),
        _hit(agent="Mimecast"),
    ]
    assert classify(RULES, hits, {DELIVERY: SENT}, {}) == [
        _machine("privacy-proxy", "apple"),
        _machine("too-soon"),
        _human("yahoo"),
        _machine("scanner-agent"),
    ]
    assert classify(RULES, [], {}, {}) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"many_links": 1},
        {"burst": 0},
        {"window": timedelta(seconds=-1)},
        {"too_soon": timedelta(seconds=-1)},
    ],
)
def test_rules_that_make_no_sense_are_refused(changes):
    with pytest.raises(ValueError):
        Rules(ProxyRanges.builtin(), **changes)


# --- properties ----------------------------------------------------------------------------

DELIVERIES = [UUID(int=1), UUID(int=2)]
HITS = st.builds(
    Hit,
    kind=st.sampled_from(HitKind),
    delivery_id=st.sampled_from(DELIVERIES),
    link=st.integers(0, 3),
    at=st.integers(0, 4000).map(lambda ms: SENT + _ms(ms)),
    ip=st.sampled_from([None, "17.0.0.1", "198.51.100.4", "2001:db8::1", "junk"]),
    user_agent=st.sampled_from([None, "", CHROME, GMAIL, YAHOO, "Barracuda", "curl/8.0"]),
)
SENT_AT = st.fixed_dictionaries(
    {DELIVERIES[0]: st.sampled_from([None, SENT]), DELIVERIES[1]: st.just(SENT)}
)


@settings(max_examples=300, deadline=None)
@given(hits=st.lists(HITS, max_size=40), sent_at=SENT_AT, seed=st.randoms(use_true_random=False))
def test_one_verdict_per_hit_whatever_the_order(hits, sent_at, seed):
    verdicts = classify(RULES, hits, sent_at, {})
    assert len(verdicts) == len(hits)
    for hit, verdict in zip(hits, verdicts, strict=True):
        assert verdict.machine == (verdict.reason is not None)
        assert verdict.proxy is None or hit.kind is HitKind.OPEN
    # With distinct times the order of the batch cannot matter.
    distinct = list({hit.at: hit for hit in hits}.values())
    shuffled = distinct[:]
    seed.shuffle(shuffled)
    by_hit = dict(zip(distinct, classify(RULES, distinct, sent_at, {}), strict=True))
    assert classify(RULES, shuffled, sent_at, {}) == [by_hit[hit] for hit in shuffled]


@settings(max_examples=300, deadline=None)
@given(hits=st.lists(HITS, max_size=40), sent_at=SENT_AT, split=st.integers(0, 40))
def test_a_batch_split_in_two_is_judged_as_one(hits, sent_at, split):
    hits = sorted(hits, key=lambda hit: hit.at)
    first, second = hits[:split], hits[split:]
    earlier: dict[UUID, list[Hit]] = defaultdict(list)
    for hit in first:
        earlier[hit.delivery_id].append(hit)
    whole = classify(RULES, hits, sent_at, {})
    assert classify(RULES, second, sent_at, earlier) == whole[len(first) :]


def test_a_module_docstring_lists_every_reason():
    doc = machines.__doc__ or ""
    for reason in ("privacy-proxy", "scanner-agent", "too-soon", "many-links", "burst"):
        assert f"**{reason}**" in doc
