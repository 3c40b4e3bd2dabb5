"""Email tracking (issue 19): the open and click endpoints under load, and a campaign's stats.

Two parts, each in a fresh database, each printed next to a baseline measured in the same run:
- endpoints: `GET /t/o/{token}` (70%) and `GET /t/c/{token}` (30%) over --deliveries sent
  messages, paced at --rate requests/s for --seconds from --connections kept-alive senders.
  Latency is counted from each request's due time, so a request that waits for its
  connection, or for a late sender, counts that wait. Baseline: the same paced load against
  `/healthz`, which reads nothing. Once the server has stopped (SIGTERM), the hits stored
  are compared with the requests answered. --process then times the worker's processing
  of those hits (`actors.run_workspace`, in this process).
- stats: a campaign of --recipients deliveries written with COPY (the statement trigger
  adds their counters), --deltas rows of opens, clicks and orders in the counter deltas,
  then `campaign(id) { stats variants { stats } }` over GraphQL, before and after the
  deltas are rolled up. Baseline: the scan the counters replace, deliveries grouped by
  variant and status.
Targets (issue 19): p99 <= 10 ms at 2,000 requests/s with no hit lost; a campaign's stats
read in <= 50 ms at a million deliveries.

Usage: python -m bench.tracking [--part endpoints|stats|all] [--rate 2000] [--seconds 30]
       [--connections 32] [--deliveries 20000] [--process] [--recipients 1000000]
       [--chunks 4] [--deltas 50000] [--reads 200] [--workers 2]
"""

import argparse
import asyncio
import io
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import uvloop
from strawberry import relay

from bench.common import (
    CpuMeter,
    _read_response,
    create_workspace,
    env_for,
    fresh_database,
    http_request,
    machine_reference,
    percentile,
    running_server,
)
from delivery.tracking.repository import ALL_COUNTERS
from delivery.tracking.tokens import Tokens

SECRET = env_for("")["SECRET_KEY"]
URL = "https://shop.example/sale?utm_source=newsletter&utm_medium=email&utm_campaign=bench&p={}"
AGENTS = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
    ),
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.104 Mobile Safari/537.36"
    ),
]
DELIVERY_COLUMNS = (
    "workspace_id, id, campaign_id, profile_id, variant, status, reason, due_at, sent_at, "
    "updated_at"
)
STATS_FIELDS = (
    "recipients skipped sent delivered bounced complained failed opened opens machineOpens "
    "clicked clicks machineClicks converted orders revenue unsubscribed deliveryRate bounceRate "
    "openRate clickRate clickToOpenRate conversionRate unsubscribeRate complaintRate "
    "revenuePerEmail"
)
STATS_QUERY = (
    f"query($id: ID!) {{ campaign(id: $id) {{ stats {{ {STATS_FIELDS} }} "
    f"variants {{ name stats {{ {STATS_FIELDS} }} }} }} }}"
)
SCAN = (
    "SELECT coalesce(variant, ''), status, count(*) FROM deliveries "
    "WHERE workspace_id = %s AND campaign_id = %s GROUP BY 1, 2"
)
_COLUMNS = ", ".join(("campaign_id", "variant", "bucket", *ALL_COUNTERS))
_WHERE = "workspace_id = %(ws)s AND campaign_id = %(c)s"
# The read behind `stats` and behind `variants` (repository.totals), as the owner.
COUNTERS_SQL = (
    f"SELECT campaign_id, variant, {', '.join(f'sum({n})' for n in ALL_COUNTERS)} "  # noqa: S608 - fixed names
    f"FROM (SELECT {_COLUMNS} FROM message_stats WHERE {_WHERE} UNION ALL "
    f"SELECT {_COLUMNS} FROM message_stats_deltas WHERE {_WHERE}) s GROUP BY 1, 2"
)
P99_TARGET_MS = 10.0
STATS_TARGET_MS = 50.0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def insert_campaign(conn: psycopg.Connection[Any], workspace_id: str, name: str) -> uuid.UUID:
    """A sent campaign with variants A and B, as the owner: only the workspace is a foreign key."""
    campaign_id = uuid.uuid4()
    variants = [{"name": "A", "subject": "Sale", "weight": 0.5},
                {"name": "B", "subject": "Our sale", "weight": 0.5}]  # fmt: skip
    conn.execute(
        "INSERT INTO campaigns (workspace_id, id, name, status, segment_id, template_id, "
        " template_version, purpose, from_email, domain_id, variants, started_at, finished_at) "
        "VALUES (%s, %s, %s, 'SENT', %s, %s, 1, 'newsletter', 'news@shop.example', %s, %s, "
        " now() - interval '12 hours', now() - interval '1 hour')",
        (workspace_id, campaign_id, name, uuid.uuid4(), uuid.uuid4(), uuid.uuid4(),
         orjson.dumps(variants).decode()),
    )  # fmt: skip
    return campaign_id


def delivery_line(workspace_id: str, campaign_id: uuid.UUID, delivery_id: uuid.UUID, *,
                  profile_id: uuid.UUID, variant: str, status: str, sent_at: datetime | None,
                  updated_at: datetime) -> str:  # fmt: skip
    reason = "no_consent" if status == "SKIPPED" else r"\N"
    sent = sent_at.isoformat() if sent_at else r"\N"
    return (f"{workspace_id}\t{delivery_id}\t{campaign_id}\t{profile_id}\t{variant}\t{status}\t"
            f"{reason}\t{updated_at.isoformat()}\t{sent}\t{updated_at.isoformat()}\n")  # fmt: skip


def copy_text(conn: psycopg.Connection[Any], statement: str, data: str) -> float:
    """One COPY of prepared text, committed; its seconds."""
    started = time.perf_counter()
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.write(data.encode())
    conn.commit()
    return time.perf_counter() - started


# ---------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class Sent:
    workspace_id: str
    campaign_id: uuid.UUID
    deliveries: list[uuid.UUID]
    sent_at: datetime


def seed_sent(database_url: str, workspace_id: str, count: int) -> Sent:
    """`count` profiles with an email each, and a campaign delivered to them an hour ago."""
    sent_at = datetime.now(UTC) - timedelta(hours=1)
    profiles = [uuid.uuid4() for _ in range(count)]
    deliveries = [uuid.uuid4() for _ in range(count)]
    with psycopg.connect(database_url) as conn:
        campaign_id = insert_campaign(conn, workspace_id, "tracked")
        conn.commit()
        with conn.cursor() as cur:
            with cur.copy("COPY profiles (workspace_id, id, traits) FROM STDIN") as copy:
                for pid in profiles:
                    copy.write_row((workspace_id, pid, "{}"))
            with cur.copy(
                "COPY identities (workspace_id, kind, value, profile_id) FROM STDIN"
            ) as copy:
                for i, pid in enumerate(profiles):
                    copy.write_row((workspace_id, "email", f"p{i}@example.com", pid))
        conn.commit()
        pairs = enumerate(zip(deliveries, profiles, strict=True))
        lines = "".join(
            delivery_line(workspace_id, campaign_id, d, profile_id=p, variant="AB"[i % 2],
                          status="SENT", sent_at=sent_at, updated_at=sent_at)
            for i, (d, p) in pairs
        )  # fmt: skip
        copy_text(conn, f"COPY deliveries ({DELIVERY_COLUMNS}) FROM STDIN", lines)
        conn.execute("ANALYZE")
    return Sent(workspace_id, campaign_id, deliveries, sent_at)


def tracking_requests(sent: Sent, count: int, seed: int = 19) -> tuple[list[bytes], list[str]]:
    """`count` requests, 70% opens and 30% clicks on one of three links, spread over the
    deliveries (each taken in turn, in a shuffled order); and each one's kind."""
    rng = random.Random(seed)
    tokens = Tokens(SECRET, lifetime=timedelta(days=365))
    workspace_id = uuid.UUID(sent.workspace_id)
    order = list(sent.deliveries)
    rng.shuffle(order)
    requests: list[bytes] = []
    kinds: list[str] = []
    for i in range(count):
        delivery = order[i % len(order)]
        headers = {"User-Agent": rng.choice(AGENTS), "Accept": "*/*"}
        if rng.random() < 0.7:
            path = "/t/o/" + tokens.open(workspace_id, delivery, sent.sent_at)
            kinds.append("open")
        else:
            link = rng.randrange(1, 4)
            token = tokens.click(workspace_id, delivery, link, URL.format(link), sent.sent_at)
            path = "/t/c/" + token
            kinds.append("click")
        requests.append(http_request("GET", path, b"", headers))
    return requests, kinds


@dataclass
class Paced:
    seconds: float  # from the first due time to the last answer
    from_due: list[float]
    from_send: list[float]
    statuses: list[int]

    @property
    def rate(self) -> float:
        return len(self.statuses) / self.seconds

    def bad(self) -> int:
        return sum(1 for s in self.statuses if not 200 <= s < 400)

    def p99(self) -> float:
        return percentile(self.from_due, 99)


async def paced(host: str, port: int, requests: list[bytes], rate: float,
                connections: int) -> Paced:  # fmt: skip
    """Send request i at start + i / rate, each connection its share in turn; latency from due.

    A request whose connection is still waiting for the previous answer goes when that
    answer arrives, and its wait counts: queueing is not hidden by the pacing.
    """
    count = len(requests)
    from_due = [0.0] * count
    from_send = [0.0] * count
    statuses = [0] * count
    opened = await asyncio.gather(
        *(asyncio.open_connection(host, port) for _ in range(connections))
    )
    start = time.perf_counter() + 0.05

    async def sender(first: int, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:  # fmt: skip
        for i in range(first, count, connections):
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            sent = time.perf_counter()
            writer.write(requests[i])
            statuses[i], _ = await _read_response(reader)
            done = time.perf_counter()
            from_due[i], from_send[i] = done - due, done - sent

    try:
        await asyncio.gather(*(sender(j, r, w) for j, (r, w) in enumerate(opened)))
    finally:
        for _, writer in opened:
            writer.close()
    return Paced(time.perf_counter() - start, from_due, from_send, statuses)


def report_paced(label: str, load: Paced, *, rate: float, connections: int, workers: int,
                 cpu: CpuMeter) -> None:  # fmt: skip
    print(f"{label}, paced at {rate:,.0f}/s: {load.rate:,.0f}/s achieved over "
          f"{load.seconds:.1f}s ({len(load.statuses):,} requests, {connections} connections "
          f"kept open, {workers} server processes, {load.bad()} not 2xx/3xx)")  # fmt: skip
    due, send = load.from_due, load.from_send
    print(f"  latency from due time: p50 {ms(percentile(due, 50))}, p99 {ms(percentile(due, 99))}"
          f", max {ms(max(due))}; from send: p50 {ms(percentile(send, 50))}, "
          f"p99 {ms(percentile(send, 99))}")  # fmt: skip
    print(f"  {cpu.per(len(load.statuses), 'request')}")


def commits(database_url: str) -> int:
    """Transactions committed in the database so far (a backend reports its own when it ends)."""
    with psycopg.connect(database_url) as conn:
        [(found,)] = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchall()
    return int(found)


def count_hits(database_url: str) -> Counter[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT kind, count(*) FROM tracking_hits GROUP BY kind").fetchall()
    return Counter({kind: int(n) for kind, n in rows})


def process_all(database_url: str, workspace_id: str) -> tuple[int, float]:
    """Run the worker's processing of the workspace in this process until it finds nothing
    left, once the newest hit has settled: (items processed, seconds)."""
    # Imported here: the actors bind themselves to a broker when imported.
    from delivery.tracking import actors, machines, processing  # noqa: PLC0415
    from tests.support.jobs import as_worker  # noqa: PLC0415

    # A hit is judged only once it has settled; a call takes a bounded number of batches.
    rules = machines.Rules(machines.ProxyRanges.builtin())
    time.sleep(processing.settle(rules).total_seconds())

    async def work() -> int:
        total = 0
        while done := await actors.run_workspace(uuid.UUID(workspace_id)):
            total += done
        return total

    started = time.perf_counter()
    done = as_worker(database_url, work)
    return done, time.perf_counter() - started


def endpoints(args: argparse.Namespace) -> None:
    total = int(args.rate * args.seconds)
    with fresh_database() as database_url:
        ws = create_workspace(database_url)
        started = time.perf_counter()
        sent = seed_sent(database_url, ws["workspace_id"], args.deliveries)
        print(f"endpoints: a campaign of {args.deliveries:,} deliveries (variants A/B, sent an "
              f"hour ago) with their profiles, written in {time.perf_counter() - started:.1f}s")  # fmt: skip
        if args.process:
            # The trigger queued an `Email Delivered` per delivery: processed first, so that
            # the timed run below holds the hits only.
            done, seconds = process_all(database_url, ws["workspace_id"])
            print(f"  sending outcomes processed before the load: {done:,} in {seconds:.1f}s "
                  f"({done / seconds:,.0f}/s)")  # fmt: skip
        warm_count = max(500, total // 100)
        requests, kinds = tracking_requests(sent, total + warm_count)
        warm, measured = requests[:warm_count], requests[warm_count:]
        health = [http_request("GET", "/healthz", b"", {"User-Agent": AGENTS[0]})] * total
        print(f"  {total:,} requests built ({kinds[warm_count:].count('open'):,} opens, "
              f"{kinds[warm_count:].count('click'):,} clicks) after {warm_count:,} to warm up",
              flush=True)  # fmt: skip
        committed = commits(database_url)
        with running_server(database_url, args.workers) as server:
            host, port = server.host, server.port
            # uvloop, as the server runs: asyncio's default loop cost the load generator a
            # fifth more CPU, on the cores the server uses, and woke senders up to 1 ms late,
            # which counts as latency from the due time.
            warmed = uvloop.run(paced(host, port, warm, args.rate, args.connections))
            uvloop.run(paced(host, port, health[:warm_count], args.rate, args.connections))
            with CpuMeter(server) as health_cpu:
                baseline = uvloop.run(paced(host, port, health, args.rate, args.connections))
            with CpuMeter(server) as cpu:
                load = uvloop.run(paced(host, port, measured, args.rate, args.connections))
            stopping = time.perf_counter()
        stopped = time.perf_counter() - stopping
        committed = commits(database_url) - committed
        stored = count_hits(database_url)
        answered: Counter[str] = Counter()
        for kind, status in zip(kinds, warmed.statuses + load.statuses, strict=True):
            if status == (200 if kind == "open" else 302):
                answered[kind] += 1
        shape = {"rate": args.rate, "connections": args.connections, "workers": args.workers}
        report_paced("baseline /healthz", baseline, **shape, cpu=health_cpu)
        report_paced("tracking /t/o + /t/c", load, **shape, cpu=cpu)
        ratio = load.p99() / baseline.p99()
        print(f"ratio p99 tracking / healthz (from due time): {ratio:.2f}")
        print(f"server stopped (SIGTERM, graceful) in {stopped:.1f}s")
        lost = sum(answered.values()) - sum(stored.values())
        print(f"hits stored {sum(stored.values()):,} of {sum(answered.values()):,} answered "
              f"(warm-up included); lost {lost:,} (opens {stored['open']:,} of "
              f"{answered['open']:,}, clicks {stored['click']:,} of {answered['click']:,})")  # fmt: skip
        print(f"PostgreSQL transactions committed while the server ran: {committed:,}, "
              f"{sum(stored.values()) / max(1, committed):.1f} hits a transaction")  # fmt: skip
        met = (load.p99() * 1000 <= P99_TARGET_MS and load.rate >= 0.98 * args.rate
               and load.bad() == 0)  # fmt: skip
        print(f"target p99 <= {P99_TARGET_MS:.0f} ms at {args.rate:,.0f}/s (latency from due "
              f"time, achieved rate within 2%, all answered 2xx/3xx): "
              f"{'MET' if met else 'NOT MET'}")  # fmt: skip
        print(f"target no hit lost: {'MET' if lost == 0 else 'NOT MET'}", flush=True)
        if args.process:
            done, seconds = process_all(database_url, ws["workspace_id"])
            print(f"processing (run_workspace in one process, informational): {done:,} hits in "
                  f"{seconds:.1f}s, {done / seconds:,.0f} hits/s; against the {args.rate:,.0f}/s "
                  f"that arrived: {done / seconds / args.rate:.2f}")  # fmt: skip


# ---------------------------------------------------------------- stats


@dataclass(frozen=True)
class Campaign:
    workspace_id: str
    campaign_id: uuid.UUID
    statuses: Counter[tuple[str, str]]  # (variant, status) -> deliveries
    engagement: dict[str, float]  # counter -> total added as deltas


def campaign_lines(workspace_id: str, campaign_id: uuid.UUID, count: int, *, start: datetime,
                   rng: random.Random, statuses: Counter[tuple[str, str]]) -> str:  # fmt: skip
    """`count` deliveries as COPY text: 94% sent over ten hours from `start`, 2% bounced a few
    minutes after sending, 4% skipped at the start."""
    out = io.StringIO()
    for _ in range(count):
        variant, draw = rng.choice("AB"), rng.random()
        left = start + timedelta(seconds=rng.randrange(36_000))
        sent_at: datetime | None = left
        if draw < 0.04:
            status, sent_at, updated = "SKIPPED", None, start
        elif draw < 0.06:
            status, updated = "BOUNCED", left + timedelta(minutes=rng.randrange(1, 30))
        else:
            status, updated = "SENT", left
        statuses[variant, status] += 1
        out.write(delivery_line(workspace_id, campaign_id, uuid.uuid4(), profile_id=uuid.uuid4(),
                                variant=variant, status=status, sent_at=sent_at,
                                updated_at=updated))  # fmt: skip
    return out.getvalue()


def engagement_lines(workspace_id: str, campaign_id: uuid.UUID, count: int, start: datetime,
                     rng: random.Random) -> tuple[str, dict[str, float]]:  # fmt: skip
    """`count` small counter deltas spread over the eleven hours from `start`, as a worker
    writes them batch by batch; and their totals."""
    out = io.StringIO()
    totals: dict[str, float] = {}
    for _ in range(count):
        bucket = start + timedelta(hours=rng.randrange(11))
        opened = rng.randrange(10)
        clicked = rng.randrange(3)
        converted = int(rng.random() < 0.1)
        row = {"opened": opened, "opens": opened + rng.randrange(5), "machine_opens": rng.randrange(3),
               "clicked": clicked, "clicks": clicked + rng.randrange(2), "converted": converted,
               "orders": converted, "revenue": converted * rng.randrange(10, 200)}  # fmt: skip
        for name, value in row.items():
            totals[name] = totals.get(name, 0) + value
        values = "\t".join(str(v) for v in row.values())
        out.write(f"{workspace_id}\t{campaign_id}\t{rng.choice('AB')}\t{bucket.isoformat()}\t"
                  f"{values}\n")  # fmt: skip
    return out.getvalue(), dict(totals)


def seed_campaign(database_url: str, workspace_id: str, recipients: int, deltas: int,
                  chunks: int) -> Campaign:  # fmt: skip
    rng = random.Random(1_000_000)
    start = (datetime.now(UTC) - timedelta(hours=11)).replace(minute=0, second=0, microsecond=0)
    statuses: Counter[tuple[str, str]] = Counter()
    copy_deliveries = f"COPY deliveries ({DELIVERY_COLUMNS}) FROM STDIN"
    with psycopg.connect(database_url) as conn:
        campaign_id = insert_campaign(conn, workspace_id, "million")
        conn.commit()
        size = -(-recipients // chunks)
        times = []
        for first in range(0, recipients, size):
            n = min(size, recipients - first)
            data = campaign_lines(workspace_id, campaign_id, n, start=start, rng=rng,
                                  statuses=statuses)  # fmt: skip
            times.append((n, copy_text(conn, copy_deliveries, data)))
        spent = sum(t for _, t in times)
        print(f"stats: {recipients:,} deliveries written in {len(times)} COPY statements in "
              f"{spent:.1f}s ({recipients / spent:,.0f} rows/s; the statement trigger included), "
              f"each: {', '.join(f'{n:,} in {t:.1f}s' for n, t in times)}")  # fmt: skip
        # Baseline: the last statement's size again, with the trigger off, rolled back.
        n = times[-1][0]
        data = campaign_lines(workspace_id, campaign_id, n, start=start, rng=rng,
                              statuses=Counter())  # fmt: skip
        conn.execute("ALTER TABLE deliveries DISABLE TRIGGER deliveries_stats_insert")
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(copy_deliveries) as copy:
            copy.write(data.encode())
        bare = time.perf_counter() - started
        conn.rollback()
        print(f"  baseline, the same COPY of {n:,} with the trigger disabled (rolled back): "
              f"{bare:.1f}s; ratio last statement with / without the trigger: "
              f"{times[-1][1] / bare:.2f}")  # fmt: skip
        [queued] = conn.execute(
            "SELECT (SELECT count(*) FROM message_events), (SELECT count(*) FROM "
            "message_stats_deltas)"
        ).fetchall()
        print(f"  written by the trigger: {queued[0]:,} message_events (Email Delivered/Bounced "
              f"to process), {queued[1]:,} counter delta rows")  # fmt: skip
        lines, engagement = engagement_lines(workspace_id, campaign_id, deltas, start, rng)
        seconds = copy_text(
            conn,
            "COPY message_stats_deltas (workspace_id, campaign_id, variant, bucket, opened, opens, "
            "machine_opens, clicked, clicks, converted, orders, revenue) FROM STDIN",
            lines,
        )
        print(
            f"  {deltas:,} engagement delta rows (opens, clicks, orders) written in {seconds:.1f}s"
        )
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE deliveries")
        conn.execute("ANALYZE message_stats_deltas")
    return Campaign(workspace_id, campaign_id, statuses, engagement)


async def sequential(host: str, port: int, request: bytes, count: int) -> tuple[list[float], bytes]:
    """`count` requests one after the other on one kept-alive connection: latencies, last body."""
    reader, writer = await asyncio.open_connection(host, port)
    latencies: list[float] = []
    body = b""
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(request)
            status, body = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    finally:
        writer.close()
    return latencies, body


def sql_runs(database_url: str, statement: str, params: Any, runs: int) -> list[float]:
    latencies = []
    with psycopg.connect(database_url) as conn:
        for _ in range(runs):
            started = time.perf_counter()
            conn.execute(statement, params).fetchall()
            latencies.append(time.perf_counter() - started)
            conn.commit()
    return latencies


def check(campaign: Campaign, body: bytes) -> str:
    """The GraphQL answer against the deliveries and deltas written: a line to print."""
    answer = orjson.loads(body)
    if answer.get("errors"):
        return f"check: GraphQL errors {answer['errors']}"
    stats = answer["data"]["campaign"]["stats"]
    by = Counter[str]()
    for (_, status), n in campaign.statuses.items():
        by[status] += n
    expected = {
        "recipients": sum(by.values()), "skipped": by["SKIPPED"],
        "sent": by["SENT"] + by["BOUNCED"], "delivered": by["SENT"], "bounced": by["BOUNCED"],
        **{name: int(v) for name, v in campaign.engagement.items() if name != "revenue"},
    }  # fmt: skip
    expected["machineOpens"] = expected.pop("machine_opens")
    wrong: dict[str, tuple[Any, Any]] = {
        k: (stats[k], v) for k, v in expected.items() if stats[k] != v
    }
    wrong |= {"revenue": (stats["revenue"], campaign.engagement["revenue"])
              } if stats["revenue"] != campaign.engagement["revenue"] else {}  # fmt: skip
    variants = {v["name"]: v["stats"]["recipients"] for v in answer["data"]["campaign"]["variants"]}
    return (f"check: recipients {stats['recipients']:,} (A {variants.get('A', 0):,}, "
            f"B {variants.get('B', 0):,}), sent {stats['sent']:,}, opened {stats['opened']:,}, "
            f"clicked {stats['clicked']:,}, open rate {stats['openRate']:.3f}: "
            + ("every count as written" if not wrong else f"DIFFERENT (got, written): {wrong}"))  # fmt: skip


def roll_up(database_url: str, workspace_id: str) -> tuple[int, float]:
    """`repository.roll_up` through a unit of work, as the worker runs it: (deltas, seconds)."""
    from delivery.tracking import repository  # noqa: PLC0415
    from domain import jobs  # noqa: PLC0415
    from tests.support.jobs import as_worker  # noqa: PLC0415

    async def work() -> int:
        async with jobs.runtime().uow(uuid.UUID(workspace_id)) as uow:
            moved = await repository.roll_up(uow)
            await uow.commit()
            return moved

    started = time.perf_counter()
    moved = as_worker(database_url, work)
    return moved, time.perf_counter() - started


def stats(args: argparse.Namespace) -> None:
    with fresh_database() as database_url:
        ws = create_workspace(database_url)
        campaign = seed_campaign(database_url, ws["workspace_id"], args.recipients, args.deltas,
                                 args.chunks)  # fmt: skip
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ws['api_token']}"}
        global_id = relay.to_base64("Campaign", str(campaign.campaign_id))
        request = http_request(
            "POST", "/graphql",
            orjson.dumps({"query": STATS_QUERY, "variables": {"id": global_id}}), headers,
        )  # fmt: skip
        params = {"ws": campaign.workspace_id, "c": campaign.campaign_id}
        reads: dict[str, list[float]] = {}
        counters: dict[str, list[float]] = {}
        rows: dict[str, int] = {}

        def measure(label: str, host: str, port: int) -> None:
            with psycopg.connect(database_url) as conn:
                [found] = conn.execute(
                    "SELECT (SELECT count(*) FROM message_stats), "
                    "(SELECT count(*) FROM message_stats_deltas)"
                ).fetchall()
            rows[label + " message_stats"], rows[label + " deltas"] = found
            asyncio.run(sequential(host, port, request, 20))
            reads[label], body = asyncio.run(sequential(host, port, request, args.reads))
            counters[label] = sql_runs(database_url, COUNTERS_SQL, params, 20)
            print(f"  {check(campaign, body)}", flush=True)

        with running_server(database_url, args.workers) as server:
            measure("before", server.host, server.port)
            moved, seconds = roll_up(database_url, ws["workspace_id"])
            print(f"  roll-up: {moved:,} delta rows folded into message_stats in {seconds:.2f}s")
            measure("after", server.host, server.port)
        scan = sql_runs(database_url, SCAN, (campaign.workspace_id, campaign.campaign_id), 20)
        scan50 = percentile(scan, 50)
        for label in ("before", "after"):
            read = reads[label]
            print(f"GraphQL campaign stats + variants' stats {label} the roll-up "
                  f"({rows[label + ' deltas']:,} delta rows, "
                  f"{rows[label + ' message_stats']:,} message_stats rows), {args.reads} "
                  f"sequential reads: p50 {ms(percentile(read, 50))}, "
                  f"p99 {ms(percentile(read, 99))}, max {ms(max(read))}")  # fmt: skip
            print(f"  the counters' read alone (run for `stats` and again for `variants`), raw "
                  f"SQL (psycopg), p50 of 20: "
                  f"{ms(percentile(counters[label], 50))}")  # fmt: skip
        print(f"baseline scan of deliveries by variant and status (psycopg), p50 of 20: "
              f"{ms(scan50)} over {args.recipients:,} deliveries")  # fmt: skip
        for label in ("before", "after"):
            print(f"ratio p50 GraphQL ({label} roll-up) / scan: "
                  f"{percentile(reads[label], 50) / scan50:.3f}")  # fmt: skip
        # The worker's sweep rolls the deltas up every few seconds, so the rolled-up read is the
        # steady state; the other shows a backlog of deltas the sweep has not reached yet.
        for label, case in (
            ("after", "rolled up, as the sweep keeps them"),
            ("before", f"with {rows['before deltas']:,} delta rows not rolled up"),
        ):
            p99 = percentile(reads[label], 99) * 1000
            print(f"target {STATS_TARGET_MS:.0f} ms, p99 of the GraphQL read, {case}: "
                  f"{'MET' if p99 <= STATS_TARGET_MS else 'NOT MET'}")  # fmt: skip


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--part", choices=["endpoints", "stats", "all"], default="all")
    parser.add_argument("--workers", type=int, default=2,
                        help="API server processes (this machine has 2 cores)")  # fmt: skip
    parser.add_argument("--rate", type=float, default=2_000.0, help="requests/s, endpoints")
    parser.add_argument("--seconds", type=float, default=30.0, help="paced span, endpoints")
    parser.add_argument("--connections", type=int, default=32, help="senders, endpoints")
    parser.add_argument("--deliveries", type=int, default=20_000, help="messages, endpoints")
    parser.add_argument("--process", action="store_true",
                        help="also time the worker's processing of the stored hits")  # fmt: skip
    parser.add_argument("--recipients", type=int, default=1_000_000, help="deliveries, stats")
    parser.add_argument("--chunks", type=int, default=4, help="COPY statements, stats")
    parser.add_argument("--deltas", type=int, default=50_000, help="engagement deltas, stats")
    parser.add_argument("--reads", type=int, default=200, help="GraphQL reads measured, stats")
    return parser


def main() -> None:
    args = arguments().parse_args()
    print(machine_reference(), flush=True)
    parts: dict[str, Callable[[argparse.Namespace], None]] = {
        "endpoints": endpoints, "stats": stats,
    }  # fmt: skip
    for name in ["endpoints", "stats"] if args.part == "all" else [args.part]:
        parts[name](args)


if __name__ == "__main__":
    main()
