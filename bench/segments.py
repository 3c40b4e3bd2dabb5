"""Full evaluation of two segments over a realistic workspace, against hand-written SQL.

Data: --profiles profiles (traits, computed traits consistent with their
orders, most with an email identity) and --events events over the last 180
days, with a Zipf-like share of the events per profile, written with COPY
by the database owner.

Two rules, each figure the median of 3 runs after 1 warm-up, as the runtime
role in the workspace:
- the compiled selection alone (`members_query`, counted);
- the full evaluation (`services.recompute` in a unit of work, committed):
  first into an empty membership (it writes every member), then with no change;
- the same rule written by hand in SQL, counted on the same connection.
Targets: trait segment <= 1 s, behavioural segment <= 3 s including the
write of the membership diff, compiled / hand-written <= 1.5, and this
process under 500 MB of RSS during the evaluations.

Usage: python -m bench.segments [--profiles 1000000] [--events 10000000] [--explain] [--keep]
"""

import argparse
import asyncio
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
import psutil
import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bench.common import ROOT, create_workspace, fresh_database, machine_reference
from cdp.segments import compiler, services
from cdp.segments.repository import EVALUATION_WORK_MEM, MembershipChange
from consent import audit
from consent.keys import Keys
from domain import migrate
from domain.db import Timeouts, create_engine, session_factory, with_role
from domain.uow import UnitOfWork
from tests.support.database import APP_ROLE, create_database, server_url

RUNS = 3
DAYS = 180
SPAN = DAYS * 86400
CHUNK = 2_000  # profiles per round of COPY writes
MAX_EVENT_SHARE = 0.001  # the most active profile's share of all events
PARETO_ALPHA = 1.16  # the "80/20" shape of activity per profile
RSS_TARGET_MB = 500
RATIO_TARGET = 1.5

# Event names with their share of a profile's events; a profile that opens no
# email views pages instead. Openers are 60% of profiles, so ~10% of events overall.
NAMES = ("Page Viewed", "Product Viewed", "Product Added", "Email Opened", "Order Completed")
PAGE, PRODUCT, ADDED, EMAIL, ORDER = range(5)
OPENER_CUM = (48.3, 68.3, 78.3, 95.0, 100.0)
NON_OPENER_CUM = (65.0, 85.0, 95.0, 95.0, 100.0)
PLANS = (("free", 70), ("pro", 22), ("enterprise", 8))
CITIES = (
    ("Berlin", 18), ("London", 15), ("Paris", 14), ("Madrid", 10), ("Rome", 8),
    ("Amsterdam", 7), ("Vienna", 6), ("Munich", 6), ("Hamburg", 5), ("Lisbon", 4),
    ("Prague", 4), ("Warsaw", 3),
)  # fmt: skip
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 Version/17.2 Safari/605",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
)
LOCALES = ("en-GB", "de-DE", "fr-FR", "es-ES", "it-IT", "nl-NL")


# --- the data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    profiles: int
    merged: int
    identities: int
    events: int
    by_name: dict[str, int]
    partitions: int
    seconds: float


class Stamps:
    """Event times as seconds since the first midnight of the window, written as text fast."""

    def __init__(self, now: datetime) -> None:
        start = now - timedelta(seconds=SPAN)
        self.day0 = datetime(start.year, start.month, start.day, tzinfo=UTC)
        self.first = int((start - self.day0).total_seconds())
        self.last = int((now - self.day0).total_seconds())
        self._days = [(self.day0 + timedelta(days=d)).date().isoformat() for d in range(DAYS + 2)]

    def _parts(self, t: int) -> tuple[str, int, int, int]:
        day, rest = divmod(t, 86400)
        hour, rest = divmod(rest, 3600)
        return self._days[day], hour, *divmod(rest, 60)

    def column(self, t: int) -> str:
        day, h, mi, s = self._parts(t)
        return f"{day} {h:02d}:{mi:02d}:{s:02d}+00"

    def iso(self, t: int) -> str:
        """As `cdp.traits.stamp` writes a computed trait's time."""
        day, h, mi, s = self._parts(t)
        return f"{day}T{h:02d}:{mi:02d}:{s:02d}.000000+00:00"

    def months(self) -> list[date]:
        months, day = [], self.day0.date().replace(day=1)
        while day <= (self.day0 + timedelta(seconds=self.last)).date():
            months.append(day)
            day = (day + timedelta(days=32)).replace(day=1)
        return months


@dataclass
class Catalog:
    """Fixed JSON for the properties that repeat, so each event costs little to write."""

    rng: random.Random
    products: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    campaigns: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        categories = ("shoes", "shirts", "bags", "books", "toys", "garden", "kitchen", "audio")
        for k in range(500):
            product = {
                "product_id": f"sku-{k}",
                "name": f"Product {k}",
                "price": round(self.rng.uniform(5, 200)) - 0.01,
                "category": categories[k % len(categories)],
            }
            self.products.append((orjson.dumps(product).decode(), product))
        self.pages = [
            orjson.dumps({"path": f"/p/{k}", "title": f"Page {k}", "url": f"https://shop.example.com/p/{k}"}).decode()
            for k in range(300)
        ]  # fmt: skip
        self.campaigns = [
            orjson.dumps({"campaign_id": f"c{k}", "subject": f"Weekly news {k}"}).decode()
            for k in range(40)
        ]

    def order(self, order_id: str) -> tuple[str, float]:
        lines = []
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            _, product = self.rng.choice(self.products)
            lines.append({**product, "quantity": self.rng.choice((1, 1, 1, 2))})
        revenue = round(sum(p["price"] * p["quantity"] for p in lines), 2)
        properties = {"order_id": order_id, "revenue": revenue, "total": revenue,
                      "currency": "EUR", "products": lines}  # fmt: skip
        return orjson.dumps(properties).decode(), revenue


def event_counts(rng: random.Random, live: list[bool], events: int) -> list[int]:
    """A Zipf-like (Pareto) share of `events` per live profile, capped, rounded at random."""
    cap = max(1.0, MAX_EVENT_SHARE * events)
    weights = [rng.paretovariate(PARETO_ALPHA) if ok else 0.0 for ok in live]
    scale = events / sum(weights)
    # The cap takes away the tail's share: scale the rest up until the total is right again.
    for _ in range(50):
        total = sum(min(cap, w * scale) for w in weights)
        if total >= events * 0.999 or total >= cap * sum(live):
            break
        scale *= events / total
    counts = []
    for w in weights:
        expected = min(cap, w * scale)
        whole = int(expected)
        counts.append(whole + (rng.random() < expected - whole))
    return counts


@dataclass
class Generator:
    """Writes one chunk of profiles at a time to three COPY streams: events, profiles, identities."""

    workspace_id: str
    rng: random.Random
    stamps: Stamps
    catalog: Catalog
    id_head: int
    counts: list[int]
    merged_into: list[int | None]
    events: int = 0
    identities: int = 0
    by_name: list[int] = field(default_factory=lambda: [0] * len(NAMES))

    def uuid_of(self, kind: int, index: int) -> str:
        # Time-ordered like domain.ids.new_id: b-tree inserts stay local.
        return f"{self.id_head:012x}7{kind:03x}{(0b10 << 62) | index:016x}"

    def profile_lines(self, i: int) -> tuple[list[str], str, str | None]:
        """The profile's event lines, its profile line and its identity line."""
        pid = self.uuid_of(0, i)
        merged = self.merged_into[i]
        if merged is not None:
            line = f"{self.workspace_id}\t{pid}\t{self.uuid_of(0, merged)}\t{{}}\t{{}}\t{{}}\t"
            at = self.stamps.column(self.stamps.first)
            return [], f"{line}{at}\t{at}\t\\N\n", None
        email = f"user{i}@example.com" if self.rng.random() < 0.9 else None
        opener = email is not None and self.rng.random() < 2 / 3
        events, computed = self.activity(pid, self.counts[i], opener)
        traits = self.traits(email)
        at = self.stamps.iso(self.stamps.first)
        meta = {key: {"at": at, "source": "identify"} for key in traits}
        restricted = self.stamps.column(self.stamps.last) if self.rng.random() < 0.001 else "\\N"
        created = self.stamps.column(self.stamps.first)
        line = (
            f"{self.workspace_id}\t{pid}\t\\N\t{orjson.dumps(traits).decode()}\t"
            f"{orjson.dumps(meta).decode()}\t{orjson.dumps(computed).decode()}\t"
            f"{created}\t{created}\t{restricted}\n"
        )
        identity = None if email is None else f"{self.workspace_id}\temail\t{email}\t{pid}\n"
        return events, line, identity

    def traits(self, email: str | None) -> dict[str, Any]:
        rng = self.rng
        traits: dict[str, Any] = {
            "plan": rng.choices([p for p, _ in PLANS], [w for _, w in PLANS])[0]
        }
        if rng.random() < 0.95:
            traits["city"] = rng.choices([c for c, _ in CITIES], [w for _, w in CITIES])[0]
        if rng.random() < 0.9:
            traits["age"] = rng.randint(18, 75)
        signup = self.stamps.day0.date() - timedelta(days=rng.randrange(3 * 365))
        traits["signup_date"] = signup.isoformat()
        if email is not None:
            traits["email"] = email
        return traits

    def activity(self, pid: str, n: int, opener: bool) -> tuple[list[str], dict[str, Any]]:
        """`n` events of the profile, and the computed traits they give it."""
        rng, st = self.rng, self.stamps
        # A profile starts somewhere in the window and is active until now.
        start = st.first + int(rng.random() * 0.9 * SPAN)
        names = rng.choices(range(5), cum_weights=OPENER_CUM if opener else NON_OPENER_CUM, k=n)
        ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
        context = (
            f'{{"ip": "{ip}", "library": {{"name": "analytics.js", "version": "4.15.3"}}, '
            f'"locale": "{rng.choice(LOCALES)}", "userAgent": "{rng.choice(AGENTS)}"}}'
        )
        head = f"{self.workspace_id}\t"
        lines, times, revenue, orders, last_order = [], [], 0.0, 0, -1
        viewed: tuple[int, dict[str, Any]] | None = None
        for name in names:
            t = rng.randint(start, st.last)
            times.append(t)
            index = self.events
            self.events += 1
            self.by_name[name] += 1
            if name == ORDER:
                properties, amount = self.catalog.order(f"o{index}")
                revenue, orders, last_order = revenue + amount, orders + 1, max(last_order, t)
            elif name in (PRODUCT, ADDED):
                properties, product = rng.choice(self.catalog.products)
                if name == PRODUCT and (viewed is None or t > viewed[0]):
                    viewed = (t, product)
            elif name == EMAIL:
                properties = rng.choice(self.catalog.campaigns)
            else:
                properties = rng.choice(self.catalog.pages)
            ts = st.column(t)
            lines.append(
                f"{head}{self.uuid_of(1, index)}\t{ts}\t{pid}\ttrack\t{NAMES[name]}\tm{index}\t"
                f"{ts}\t{properties}\t{context}\n"
            )
        return lines, self.computed(times, orders, revenue, last_order, viewed)

    def computed(
        self,
        times: list[int],
        orders: int,
        revenue: float,
        last_order: int,
        viewed: tuple[int, dict[str, Any]] | None,
    ) -> dict[str, Any]:
        """As `cdp.traits.ProfileState.apply_event` leaves them (without the cart)."""
        if not times:
            return {}
        st = self.stamps
        c: dict[str, Any] = {"first_seen": st.iso(min(times)), "last_seen": st.iso(max(times))}
        if viewed is not None:
            c["last_product_viewed"] = {"at": st.iso(viewed[0]), "product": viewed[1]}
        if orders:
            total = round(revenue, 2)
            c.update(order_count=orders, total_revenue=total, last_order_at=st.iso(last_order),
                     average_order_value=round(total / orders, 2))  # fmt: skip
        return c


PROFILE_COPY = (
    "COPY profiles (workspace_id, id, merged_into, traits, trait_meta, computed, created_at, "
    "updated_at, restricted_at) FROM STDIN"
)
EVENT_COPY = (
    "COPY events (workspace_id, id, timestamp, profile_id, type, name, message_id, received_at, "
    "properties, context) FROM STDIN"
)
IDENTITY_COPY = "COPY identities (workspace_id, kind, value, profile_id) FROM STDIN"


def seed(database_url: str, workspace_id: str, profiles: int, events: int) -> Counts:
    """Write the workspace's data; runs in a child process, so its memory is not counted."""
    started = time.perf_counter()
    rng = random.Random(7)
    stamps = Stamps(datetime.now(UTC).replace(microsecond=0))
    # Every 200th profile was merged into the one before it: no events, no identities.
    merged_into = [i - 1 if i % 200 == 199 else None for i in range(profiles)]
    gen = Generator(
        workspace_id, rng, stamps, Catalog(rng), time.time_ns() // 1_000_000,
        event_counts(rng, [m is None for m in merged_into], events), merged_into,
    )  # fmt: skip
    with ExitStack() as stack:
        conns = [stack.enter_context(psycopg.connect(database_url)) for _ in range(3)]
        for month in stamps.months():
            conns[0].execute("SELECT cdp_ensure_event_partition(%s)", (month,))
        conns[0].commit()
        copies = [
            stack.enter_context(conn.cursor().copy(sql))
            for conn, sql in zip(conns, (EVENT_COPY, PROFILE_COPY, IDENTITY_COPY), strict=True)
        ]
        for low in range(0, profiles, CHUNK):
            write_chunk(gen, copies, range(low, min(low + CHUNK, profiles)))
            progress(low + CHUNK, profiles, gen.events, started)
    # Leaving the stack ended the COPYs, then committed each connection.
    return Counts(
        profiles, sum(m is not None for m in merged_into), gen.identities, gen.events,
        dict(zip(NAMES, gen.by_name, strict=True)), len(stamps.months()),
        time.perf_counter() - started,
    )  # fmt: skip


def write_chunk(gen: Generator, copies: list[psycopg.Copy], indexes: range) -> None:
    events: list[str] = []
    profiles: list[str] = []
    identities: list[str] = []
    for i in indexes:
        lines, profile, identity = gen.profile_lines(i)
        events.extend(lines)
        profiles.append(profile)
        if identity is not None:
            identities.append(identity)
    gen.identities += len(identities)
    for copy, rows in zip(copies, (events, profiles, identities), strict=True):
        if rows:
            copy.write("".join(rows))


def progress(done: int, total: int, events: int, started: float) -> None:
    step = max(CHUNK, total // 10 // CHUNK * CHUNK)
    if done % step == 0 and done < total:
        seconds = time.perf_counter() - started
        print(
            f"  generating: {done:,} of {total:,} profiles, {events:,} events in {seconds:.0f} s "
            f"({events / seconds:,.0f} events/s)",
            flush=True,
        )


def vacuum_analyze(database_url: str) -> float:
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) profiles, identities, events")
    return time.perf_counter() - started


# --- the rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    label: str
    definition: dict[str, Any]
    target_seconds: float
    # The same rule written by hand; its parameters from the workspace and the time.
    hand_sql: str
    hand_params: Callable[[UUID, datetime], dict[str, Any]]


LIVE = "p.workspace_id = %(ws)s AND p.merged_into IS NULL AND p.restricted_at IS NULL"

TRAIT_RULE = Rule(
    "trait segment (plan = pro, city in Berlin, Paris)",
    {
        "all": [
            {"trait": "plan", "op": "eq", "value": "pro"},
            {"trait": "city", "op": "in", "value": ["Berlin", "Paris"]},
        ]
    },
    1.0,
    f"SELECT count(*) FROM profiles p WHERE {LIVE} "  # noqa: S608 - fixed text
    "AND p.traits ->> 'plan' = %(plan)s AND p.traits ->> 'city' = ANY(%(cities)s)",
    lambda ws, _now: {"ws": ws, "plan": "pro", "cities": ["Berlin", "Paris"]},
)

BEHAVIOUR_RULE = Rule(
    "behavioural segment (2+ orders in 30 days, no email opened in 14)",
    {
        "all": [
            {
                "event": "Order Completed",
                "within": {"days": 30},
                "count": {"op": "gte", "value": 2},
            },
            {"event": "Email Opened", "within": {"days": 14}, "count": {"op": "eq", "value": 0}},
        ]
    },
    3.0,
    "SELECT count(*) FROM ("  # noqa: S608 - fixed text
    " SELECT e.profile_id FROM events e WHERE e.workspace_id = %(ws)s"
    " AND e.name = 'Order Completed' AND e.timestamp >= %(orders_since)s"
    " GROUP BY e.profile_id HAVING count(*) >= 2) o"
    f" JOIN profiles p ON p.workspace_id = %(ws)s AND p.id = o.profile_id WHERE {LIVE}"
    " AND NOT EXISTS (SELECT 1 FROM events x WHERE x.workspace_id = %(ws)s"
    " AND x.profile_id = p.id AND x.name = 'Email Opened' AND x.timestamp >= %(opened_since)s)",
    lambda ws, now: {
        "ws": ws,
        "orders_since": now - timedelta(days=30),
        "opened_since": now - timedelta(days=14),
    },
)


# --- measuring ------------------------------------------------------------------------------


def median_of(runs: list[float]) -> str:
    listed = ", ".join(f"{r:.3f}" for r in runs)
    return f"{statistics.median(runs):.3f} s (median of {RUNS}: {listed})"


def verdict(seconds: float, target: float) -> str:
    return f"target <= {target:g} s: {'MET' if seconds <= target else 'NOT MET'}"


async def repeat(run: Callable[[], Awaitable[tuple[float, Any]]]) -> tuple[list[float], Any]:
    """One warm-up, then RUNS timed runs; the seconds of each and the last run's result."""
    await run()
    seconds, result = [], None
    for _ in range(RUNS):
        took, result = await run()
        seconds.append(took)
    return seconds, result


class RawConnection:
    """The runtime role's connection for the counts, in the workspace, with evaluation work_mem."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, database_url: str, workspace_id: UUID) -> "RawConnection":
        conn = await psycopg.AsyncConnection.connect(
            with_role(database_url, APP_ROLE), autocommit=True
        )
        await conn.execute(
            "SELECT set_config('cdp.workspace_id', %s, false), set_config('work_mem', %s, false)",
            (str(workspace_id), EVALUATION_WORK_MEM),
        )
        return cls(conn)

    async def count(self, sql: str, params: dict[str, Any]) -> tuple[float, int]:
        started = time.perf_counter()
        cur = await self.conn.execute(sql, params, prepare=False)
        row = await cur.fetchone()
        return time.perf_counter() - started, int(row[0]) if row else -1

    async def explain(self, sql: str, params: dict[str, Any]) -> str:
        cur = await self.conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params, prepare=False)
        return "\n".join(f"    {row[0]}" for row in await cur.fetchall())


@dataclass
class Evaluator:
    sessions: async_sessionmaker[AsyncSession]
    workspace_id: UUID
    keys: Keys

    async def create_segment(self, name: str, raw: dict[str, Any]) -> UUID:
        # As createSegment does; the recompute job it queues is left alone (no worker runs).
        data = services.SegmentInput(name=name, description=None, definition=raw)
        async with UnitOfWork(self.sessions, workspace_id=self.workspace_id) as uow:
            row = await services.create(uow, audit.Actor.system("bench"), data)
            await uow.commit()
        return row.id

    async def recompute(self, segment_id: UUID) -> tuple[float, MembershipChange]:
        started = time.perf_counter()
        async with UnitOfWork(self.sessions, workspace_id=self.workspace_id) as uow:
            change = await services.recompute(uow, self.keys, segment_id)
            await uow.commit()
        if change is None:
            raise RuntimeError(f"segment {segment_id} was not evaluated")
        return time.perf_counter() - started, change


async def measure_rule(
    rule: Rule, evaluator: Evaluator, raw: RawConnection, *, explain: bool
) -> None:
    print(rule.label, flush=True)
    now = datetime.now(UTC)
    node = services.parse(rule.definition).node
    compiled = compiler.members_query(node, workspace_id=evaluator.workspace_id, now=now)
    selection = f"SELECT count(*) FROM ({compiled.sql}) t"  # noqa: S608 - compiled fragments
    hand_params = rule.hand_params(evaluator.workspace_id, now)
    chosen, members = await repeat(lambda: raw.count(selection, compiled.params))
    hand, hand_members = await repeat(lambda: raw.count(rule.hand_sql, hand_params))
    same = "same count" if members == hand_members else f"DIFFERENT COUNT: {hand_members:,}"
    met = verdict(statistics.median(chosen), rule.target_seconds)
    print(f"  (a) compiled selection: {median_of(chosen)}; {members:,} members; {met}")
    print(f"  (c) hand-written SQL: {median_of(hand)}; {hand_members:,} members ({same})")
    ratio = statistics.median(chosen) / statistics.median(hand)
    met = "MET" if ratio <= RATIO_TARGET else "NOT MET"
    print(f"  ratio compiled / hand-written: {ratio:.2f}; target <= {RATIO_TARGET}: {met}")
    await measure_recompute(rule, evaluator)
    if explain:
        print("  EXPLAIN (ANALYZE, BUFFERS) of the compiled selection:")
        print(await raw.explain(selection, compiled.params))
        print("  EXPLAIN (ANALYZE, BUFFERS) of the hand-written SQL:")
        print(await raw.explain(rule.hand_sql, hand_params))


async def measure_recompute(rule: Rule, evaluator: Evaluator) -> None:
    """First evaluations into empty memberships (a new segment each run), then unchanged ones."""
    stem = f"{rule.label[:40]} {uuid.uuid4().hex[:6]}"
    ids = [await evaluator.create_segment(f"{stem} #{k}", rule.definition) for k in range(RUNS + 1)]
    fresh = iter(ids)
    first, change = await repeat(lambda: evaluator.recompute(next(fresh)))
    target = rule.target_seconds
    print(
        f"  (b) full evaluation, first (into an empty membership): {median_of(first)}; "
        f"{change.entered:,} entered; {verdict(statistics.median(first), target)}"
    )
    again, change = await repeat(lambda: evaluator.recompute(ids[-1]))
    print(
        f"  (b) full evaluation, unchanged: {median_of(again)}; {change.entered:,} entered, "
        f"{change.exited:,} exited; {verdict(statistics.median(again), target)}",
        flush=True,
    )


class RssSampler:
    """The peak resident memory of this process while it runs, sampled every 20 ms."""

    def __init__(self) -> None:
        self._me = psutil.Process()
        self.before = self.peak = self._me.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._me.memory_info().rss)

    @contextmanager
    def running(self) -> Iterator["RssSampler"]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._me.memory_info().rss)


def engine_for(database_url: str) -> AsyncEngine:
    # No statement timeout: a slow evaluation is a figure to print, not a failure.
    return create_engine(
        database_url,
        role=APP_ROLE,
        pool_size=1,
        timeouts=Timeouts(statement=0, idle_in_transaction=0),
    )


async def evaluate(database_url: str, workspace_id: UUID, *, explain: bool) -> None:
    engine = engine_for(database_url)
    raw = await RawConnection.open(database_url, workspace_id)
    evaluator = Evaluator(session_factory(engine), workspace_id, Keys("bench-segments-" + "x" * 40))
    try:
        with RssSampler().running() as rss:
            for rule in (TRAIT_RULE, BEHAVIOUR_RULE):
                await measure_rule(rule, evaluator, raw, explain=explain)
    finally:
        await raw.conn.close()
        await engine.dispose()
    peak_mb = rss.peak / 2**20
    lifetime_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak RSS of this process during the full evaluations: {peak_mb:.0f} MB "
        f"({rss.before / 2**20:.0f} MB before them; lifetime peak {lifetime_mb:.0f} MB); "
        f"target < {RSS_TARGET_MB} MB: {'MET' if peak_mb < RSS_TARGET_MB else 'NOT MET'}"
    )


def incremental_upkeep(events: int) -> None:
    """Ingest with 20 live segments against none, in a database of its own (bench.segment_upkeep)."""
    print("incremental upkeep (python -m bench.segment_upkeep):", flush=True)
    subprocess.run(
        [sys.executable, "-m", "bench.segment_upkeep", "--events", str(events)],
        cwd=ROOT, check=True,
    )  # fmt: skip


# --- running --------------------------------------------------------------------------------


@contextmanager
def database(keep: bool) -> Iterator[str]:
    """fresh_database(), or with --keep one that is left behind."""
    if not keep:
        with fresh_database() as url:
            yield url
        return
    url = create_database(server_url(), "cdp_bench")
    print(f"database (kept at the end): {url}", flush=True)
    migrate.upgrade(url, APP_ROLE)
    yield url


def kept_workspace(database_url: str) -> UUID:
    """The workspace an earlier run generated its data in."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM workspaces ORDER BY created_at LIMIT 1").fetchone()
    if row is None:
        raise SystemExit(f"no workspace in {database_url}: was it kept by a --keep run?")
    return UUID(str(row[0]))


def load(database_url: str, workspace_id: str, profiles: int, events: int) -> None:
    with ProcessPoolExecutor(1) as pool:
        counts = pool.submit(seed, database_url, workspace_id, profiles, events).result()
    rows = counts.profiles + counts.identities + counts.events
    print(
        f"generated {counts.profiles:,} profiles ({counts.merged:,} merged away), "
        f"{counts.identities:,} email identities, {counts.events:,} events "
        f"in {counts.partitions} monthly partitions, "
        f"in {counts.seconds:.1f} s ({rows / counts.seconds:,.0f} rows/s)"
    )
    mix = ", ".join(f"{name} {n / counts.events:.1%}" for name, n in counts.by_name.items())
    print(f"  events: {mix}")
    print(f"VACUUM ANALYZE: {vacuum_analyze(database_url):.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of each query"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database; print its URL")
    parser.add_argument(
        "--reuse", metavar="URL",
        help="evaluate in a database kept by an earlier --keep run, without generating data",
    )  # fmt: skip
    parser.add_argument(
        "--upkeep-events", type=int, default=100_000,
        help="events of the ingest-with-segments run (bench.segment_upkeep); 0 skips it",
    )  # fmt: skip
    args = parser.parse_args()
    print(machine_reference(), flush=True)
    started = time.perf_counter()
    if args.reuse:
        asyncio.run(evaluate(args.reuse, kept_workspace(args.reuse), explain=args.explain))
    else:
        with database(args.keep) as url:
            workspace_id = UUID(create_workspace(url)["workspace_id"])
            load(url, str(workspace_id), args.profiles, args.events)
            asyncio.run(evaluate(url, workspace_id, explain=args.explain))
    if args.upkeep_events:
        incremental_upkeep(args.upkeep_events)
    print(f"whole run: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
