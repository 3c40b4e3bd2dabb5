"""Which opens and clicks were made by machines rather than people.

Every hit (a fetch of the open pixel, or a click on a tracked link) is kept,
but a hit that a machine made is flagged with a short reason code and left
out of the human open and click counts. The rules, in the order they are
checked (the first that matches gives the reason):

1. **privacy-proxy** - the open came from the network of a mail privacy
   proxy, such as Apple Mail Privacy Protection. Apple's servers fetch the
   images of every message when it arrives, whether or not anyone reads it,
   so these opens say nothing about the person. Apple's own network
   (17.0.0.0/8) is known out of the box; the operator can load Apple's
   published list of proxy addresses for the rest. Clicks from these
   networks are not affected: a person browsing through Apple's relay is
   still a person.
2. **scanner-agent** - the click came from a known link scanner: the
   security services of companies and mailbox providers (Microsoft Safe
   Links, Proofpoint, Mimecast, Barracuda and others) that follow every link
   of a message to check it for danger before anyone sees it. They are
   recognised by the name they give in their browser signature. A click with
   no browser signature at all is not treated as a machine for that reason
   alone, and neither are developer tools such as curl.
3. **too-soon** - the open or click arrived less than `too_soon` (two
   seconds by default) after the message was sent, or even before it when
   clocks disagree. Nobody reads that fast; a filter inspecting the message
   on its way in does. Hits on messages whose send time is unknown are not
   judged by this rule.
4. **many-links** - `many_links` (three by default) or more different links
   of one message were clicked within `window` (one second by default).
   People click one link, maybe two, and not in the same second; a scanner
   clicks them all at once. Every click of such a cluster is flagged.
5. **burst** - the same link of one message was hit more than `burst` times
   (five by default) within `window`, or the message was opened more than
   `burst` times within `window`. The first `burst` hits count; the rest of
   the storm does not.

Gmail and Yahoo Mail also fetch images through their own proxies, but only
when the person opens the message, so those opens do count as human. Every
open fetched through a known image proxy records which one ("apple",
"google", "yahoo"), whether or not it counts as human.

The time rules look at hits recorded shortly before the batch as well, so a
cluster split across two batches is still caught.
"""

import re
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Final, NamedTuple
from uuid import UUID

PRIVACY_PROXY: Final = "privacy-proxy"
SCANNER_AGENT: Final = "scanner-agent"
TOO_SOON: Final = "too-soon"
MANY_LINKS: Final = "many-links"
BURST: Final = "burst"

APPLE: Final = "apple"
GOOGLE: Final = "google"
YAHOO: Final = "yahoo"

# Apple owns the whole of 17.0.0.0/8; the relays' other egress ranges come
# from the list the operator downloads (ProxyRanges.from_csv).
APPLE_NETWORK: Final = "17.0.0.0/8"

# Image proxies that fetch only when the person opens the message.
IMAGE_PROXY_AGENTS: Final[Mapping[str, str]] = {
    "googleimageproxy": GOOGLE,
    "yahoomailproxy": YAHOO,
}

# Product names that link scanners put in their User-Agent. Matched as
# case-insensitive substrings. Generic HTTP clients (curl, python-requests,
# Go-http-client...) are deliberately absent: people test links with them.
SCANNER_MARKERS: Final[tuple[str, ...]] = (
    "barracuda",
    "proofpoint",
    "urldefense",
    "mimecast",
    "symantec",
    "messagelabs",
    "trend micro",
    "trendmicro",
    "forcepoint",
    "sophos",
    "microsoft office protection",
    "safelinks",
    "bitdefender",
    "cisco",
    "ironport",
    "fortinet",
    "fortiguard",
    "bingpreview",
    "microsoftpreview",
    "google-safety",
)

_SCANNER = re.compile("|".join(re.escape(marker) for marker in SCANNER_MARKERS), re.IGNORECASE)


class HitKind(Enum):
    OPEN = "open"
    CLICK = "click"


@dataclass(frozen=True)
class Hit:
    kind: HitKind
    delivery_id: UUID
    link: int
    at: datetime
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class Verdict:
    machine: bool
    reason: str | None
    proxy: str | None = None


class _Block(NamedTuple):
    version: int
    start: int
    end: int
    name: str


@dataclass
class _Table:
    """Disjoint, sorted address intervals of one IP version, for bisection."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def add(self, start: int, end: int, name: str) -> None:
        if start > end:
            return
        if self.ends and self.ends[-1] + 1 == start and self.names[-1] == name:
            self.ends[-1] = end
            return
        self.starts.append(start)
        self.ends.append(end)
        self.names.append(name)

    def find(self, value: int) -> str | None:
        at = bisect_right(self.starts, value) - 1
        if at >= 0 and value <= self.ends[at]:
            return self.names[at]
        return None


def _flatten(blocks: Iterable[_Block]) -> _Table:
    """Nested prefixes become disjoint intervals; the most specific prefix names each address.

    CIDR prefixes are either nested or disjoint, so a stack of the prefixes
    that enclose the current one is enough.
    """
    table = _Table()
    enclosing: list[_Block] = []
    cursor = 0  # the first address not yet given to the table
    for block in sorted(blocks, key=lambda block: (block.start, -block.end, block.name)):
        while enclosing and enclosing[-1].end < block.start:
            cursor = _close(table, enclosing.pop(), cursor)
        if enclosing:
            table.add(cursor, block.start - 1, enclosing[-1].name)
        cursor = block.start
        enclosing.append(block)
    while enclosing:
        cursor = _close(table, enclosing.pop(), cursor)
    return table


def _close(table: _Table, block: _Block, cursor: int) -> int:
    table.add(cursor, block.end, block.name)
    return max(cursor, block.end + 1)


Network = IPv4Network | IPv6Network
IPV4: Final = 4
IPV6: Final = 6


class ProxyRanges:
    """IP ranges of mail privacy proxies, each with the proxy's name."""

    __slots__ = ("_blocks", "_v4", "_v6")

    def __init__(self, networks: Iterable[tuple[Network, str]] = ()) -> None:
        self._load([_network_block(network, name) for network, name in networks])

    def _load(self, blocks: list[_Block]) -> None:
        self._blocks = blocks
        self._v4 = _flatten(block for block in blocks if block.version == IPV4)
        self._v6 = _flatten(block for block in blocks if block.version == IPV6)

    @classmethod
    def builtin(cls) -> "ProxyRanges":
        return cls([(ip_network(APPLE_NETWORK), APPLE)])

    @classmethod
    def from_csv(cls, text: str, *, name: str = APPLE) -> "ProxyRanges":
        """Ranges from lines of "ip_prefix,country,region,city,..." (Apple's egress list).

        Blank lines, comments, headers and lines whose first field is not an
        IP prefix are skipped.
        """
        ranges = cls()
        ranges._load([block for line in text.splitlines() if (block := _csv_block(line, name))])
        return ranges

    def merged(self, other: "ProxyRanges") -> "ProxyRanges":
        merged = ProxyRanges()
        merged._load(self._blocks + other._blocks)  # noqa: SLF001 - the same class
        return merged

    def proxy_of(self, ip: str | None) -> str | None:
        if not ip:
            return None
        try:
            address = ip_address(ip.strip())
        except ValueError:
            return None
        # A dual-stack server sees an IPv4 client as ::ffff:a.b.c.d.
        mapped = address.ipv4_mapped if isinstance(address, IPv6Address) else None
        if mapped is not None and (name := self._v4.find(int(mapped))) is not None:
            return name
        table = self._v4 if isinstance(address, IPv4Address) else self._v6
        return table.find(int(address))

    def __len__(self) -> int:
        return len(self._blocks)

    def __repr__(self) -> str:
        return f"ProxyRanges({len(self)} ranges)"


def _network_block(network: Network, name: str) -> _Block:
    return _Block(
        network.version, int(network.network_address), int(network.broadcast_address), name
    )


def _csv_block(line: str, name: str) -> _Block | None:
    # Parsed by hand: ip_network builds objects that would be dropped at once,
    # and the list runs to many thousands of lines.
    prefix = line.lstrip("\ufeff").split("#", 1)[0].split(",", 1)[0]
    address_text, slash, length_text = prefix.partition("/")
    try:
        address = ip_address(address_text.strip())
    except ValueError:
        return None
    bits: int = address.max_prefixlen
    length_text = length_text.strip()
    if not slash:
        length = bits
    elif length_text.isascii() and length_text.isdigit() and int(length_text) <= bits:
        length = int(length_text)
    else:
        return None
    host = (1 << (bits - length)) - 1
    start = int(address) & ~host
    return _Block(address.version, start, start | host, name)


@dataclass(frozen=True)
class Rules:
    ranges: ProxyRanges
    too_soon: timedelta = timedelta(seconds=2)
    many_links: int = 3
    window: timedelta = timedelta(seconds=1)
    burst: int = 5

    def __post_init__(self) -> None:
        if self.many_links < 2:  # noqa: PLR2004 - one link is what people click
            raise ValueError("many_links must be at least 2")
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        if self.window < timedelta(0) or self.too_soon < timedelta(0):
            raise ValueError("window and too_soon must not be negative")


class _Entry(NamedTuple):
    at: datetime
    hit: Hit
    position: int | None  # the hit's place in the batch; None for an earlier hit


def classify(
    rules: Rules,
    hits: Sequence[Hit],
    sent_at: Mapping[UUID, datetime | None],
    earlier: Mapping[UUID, Sequence[Hit]],
) -> list[Verdict]:
    """One verdict per hit, in the order given; `earlier` feeds the window rules only."""
    many: set[int] = set()
    storm: set[int] = set()
    for timeline in _timelines(hits, earlier).values():
        many.update(_many_links(rules, [entry for entry in timeline if _is_click(entry.hit)]))
        for series in _series(timeline).values():
            storm.update(_burst(rules, series))
    return [
        _verdict(rules, hit, sent_at.get(hit.delivery_id), index in many, index in storm)
        for index, hit in enumerate(hits)
    ]


def _is_click(hit: Hit) -> bool:
    return hit.kind is HitKind.CLICK


def _timelines(
    hits: Sequence[Hit], earlier: Mapping[UUID, Sequence[Hit]]
) -> dict[UUID, list[_Entry]]:
    """Per delivery in the batch, its earlier and batch hits in time order."""
    timelines: dict[UUID, list[_Entry]] = defaultdict(list)
    for index, hit in enumerate(hits):
        timelines[hit.delivery_id].append(_Entry(hit.at, hit, index))
    for delivery_id, timeline in timelines.items():
        timeline.extend(_Entry(hit.at, hit, None) for hit in earlier.get(delivery_id, ()))
        timeline.sort(key=_order)
    return timelines


def _order(entry: _Entry) -> tuple[datetime, int]:
    # At the same instant, earlier hits were recorded first.
    return entry.at, -1 if entry.position is None else entry.position


def _series(timeline: list[_Entry]) -> dict[tuple[HitKind, int], list[_Entry]]:
    """The timeline split into opens of the message and clicks per link, order kept."""
    series: dict[tuple[HitKind, int], list[_Entry]] = defaultdict(list)
    for entry in timeline:
        link = entry.hit.link if _is_click(entry.hit) else 0
        series[entry.hit.kind, link].append(entry)
    return series


def _many_links(rules: Rules, clicks: list[_Entry]) -> Iterator[int]:
    """Batch indices of clicks inside a window that holds `many_links` distinct links.

    Every qualifying window lies inside the longest window ending at its last
    click, so checking that one window per click is enough.
    """
    links: Counter[int] = Counter()
    left = 0
    marked = 0  # clicks before this position have been yielded already
    for right, entry in enumerate(clicks):
        links[entry.hit.link] += 1
        while entry.at - clicks[left].at > rules.window:
            _forget(links, clicks[left].hit.link)
            left += 1
        if len(links) >= rules.many_links:
            yield from _indices(clicks[max(left, marked) : right + 1])
            marked = right + 1


def _forget(links: Counter[int], link: int) -> None:
    links[link] -= 1
    if not links[link]:
        del links[link]


def _burst(rules: Rules, series: list[_Entry]) -> Iterator[int]:
    """Batch indices of hits that come after `burst` others within the window before them."""
    left = 0
    for right, entry in enumerate(series):
        while entry.at - series[left].at > rules.window:
            left += 1
        if right - left >= rules.burst and entry.position is not None:
            yield entry.position


def _indices(entries: Iterable[_Entry]) -> Iterator[int]:
    return (entry.position for entry in entries if entry.position is not None)


def _verdict(
    rules: Rules, hit: Hit, sent: datetime | None, many_links: bool, burst: bool
) -> Verdict:
    proxy, private = _image_proxy(rules.ranges, hit)
    checks = (
        (private, PRIVACY_PROXY),
        (_is_click(hit) and _is_scanner(hit.user_agent), SCANNER_AGENT),
        (sent is not None and hit.at - sent < rules.too_soon, TOO_SOON),
        (many_links, MANY_LINKS),
        (burst, BURST),
    )
    reason = next((reason for matched, reason in checks if matched), None)
    return Verdict(machine=reason is not None, reason=reason, proxy=proxy)


def _image_proxy(ranges: ProxyRanges, hit: Hit) -> tuple[str | None, bool]:
    """Which image proxy fetched an open, and whether it is a privacy proxy."""
    if hit.kind is not HitKind.OPEN:
        return None, False
    privacy = ranges.proxy_of(hit.ip)
    if privacy is not None:
        return privacy, True
    agent = (hit.user_agent or "").lower()
    proxy = next((name for marker, name in IMAGE_PROXY_AGENTS.items() if marker in agent), None)
    return proxy, False


def _is_scanner(user_agent: str | None) -> bool:
    return user_agent is not None and _SCANNER.search(user_agent) is not None
