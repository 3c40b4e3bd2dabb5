"""Profile lookup by identifier, returning 20 events, at 50 concurrent clients.

Two runs, both printed:
- closed loop: 50 clients each send the next request as soon as the last answers
  (this measures throughput; latency then follows from Little's law);
- paced: 50 clients together send a fixed rate (--rate requests/s; by default
  each client one lookup every half second), which is how the target is read.
  Read as a closed loop, "p50 <= 5 ms at 50 clients" would mean 10,000
  lookups/s on two cores; the raw SQL baseline alone has a p50 near 16 ms
  there.
Baseline: the same lookup as two raw SQL statements over psycopg with 50
concurrent connections, closed loop and paced at the same rate, in the same run.
Target (issue 3): p50 <= 5 ms and p99 <= 25 ms.

Usage: python -m bench.lookup [--profiles 20000] [--requests 5000] [--rate 100] [--workers 2]
"""

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import psycopg

from bench.common import (
    CpuMeter,
    _read_response,
    create_workspace,
    fresh_database,
    http_request,
    machine_reference,
    percentile,
    running_server,
)

EVENTS_EACH = 25
CLIENTS = 50
QUERY = (
    'query($v: String!) { profile(identifier: {kind: "email", value: $v}) { id traits '
    "events(first: 20) { edges { node { name timestamp properties } } } } }"
)


def seed(database_url: str, workspace_id: str, profiles: int) -> None:
    now = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT cdp_ensure_event_partition(%s)", (now.date(),))
        with conn.cursor() as cur:
            ids = [uuid.uuid4() for _ in range(profiles)]
            with cur.copy("COPY profiles (workspace_id, id, traits) FROM STDIN") as copy:
                for i, pid in enumerate(ids):
                    copy.write_row((workspace_id, pid, orjson.dumps({"name": f"P{i}"}).decode()))
            with cur.copy(
                "COPY identities (workspace_id, kind, value, profile_id) FROM STDIN"
            ) as copy:
                for i, pid in enumerate(ids):
                    copy.write_row((workspace_id, "email", f"p{i}@example.com", pid))
            with cur.copy(
                "COPY events (workspace_id, id, timestamp, profile_id, type, name, message_id, "
                "received_at, properties, context) FROM STDIN"
            ) as copy:
                for pid in ids:
                    for j in range(EVENTS_EACH):
                        at = now + timedelta(minutes=j)
                        copy.write_row((workspace_id, uuid.uuid4(), at, pid, "track", f"E{j}",
                                        uuid.uuid4().hex, at, '{"sku": "x"}', "{}"))  # fmt: skip
        conn.commit()
        conn.execute("ANALYZE")


async def _client(
    address: tuple[str, int],
    bodies: list[bytes],
    interval: float | None,
    latencies: list[float],
    statuses: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(*address)
    next_at = time.perf_counter() + random.random() * (interval or 0)
    try:
        for body in bodies:
            if interval is not None:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += interval
            started = time.perf_counter()
            writer.write(body)
            status, _ = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses.append(status)
    finally:
        writer.close()


async def run_http(
    host: str, port: int, requests: list[bytes], rate: float | None
) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    statuses: list[int] = []
    per_client = [requests[i::CLIENTS] for i in range(CLIENTS)]
    interval = CLIENTS / rate if rate else None
    started = time.perf_counter()
    await asyncio.gather(
        *(_client((host, port), b, interval, latencies, statuses) for b in per_client)
    )
    return latencies, statuses, time.perf_counter() - started


async def run_sql(
    database_url: str, workspace_id: str, emails: list[str], rate: float | None
) -> list[float]:
    latencies: list[float] = []
    interval = CLIENTS / rate if rate else None

    async def client(batch: list[str]) -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            next_at = time.perf_counter() + random.random() * (interval or 0)
            for email in batch:
                if interval is not None:
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                    next_at += interval
                started = time.perf_counter()
                row = await (await conn.execute(
                    "SELECT p.id, p.traits FROM identities i JOIN profiles p ON p.workspace_id = i.workspace_id "
                    "AND p.id = i.profile_id WHERE i.workspace_id = %s AND i.kind = 'email' AND i.value = %s",
                    (workspace_id, email),
                )).fetchone()  # fmt: skip
                await (await conn.execute(
                    "SELECT name, timestamp, properties FROM events WHERE workspace_id = %s AND profile_id = %s "
                    "ORDER BY timestamp DESC LIMIT 20", (workspace_id, row[0]),
                )).fetchall()  # fmt: skip
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(client(emails[i::CLIENTS]) for i in range(CLIENTS)))
    return latencies


def report(label: str, latencies: list[float]) -> tuple[float, float]:
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    print(f"{label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(latencies)} lookups")
    return p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument(
        "--workers", type=int, default=2, help="API server processes (this machine has 2 cores)"
    )
    args = parser.parse_args()
    print(machine_reference(), flush=True)
    rng = random.Random(3)
    with fresh_database() as database_url:
        ws = create_workspace(database_url)
        seed(database_url, ws["workspace_id"], args.profiles)
        emails = [f"p{rng.randrange(args.profiles)}@example.com" for _ in range(args.requests)]
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ws['api_token']}"}
        requests = [
            http_request(
                "POST", "/graphql", orjson.dumps({"query": QUERY, "variables": {"v": e}}), headers
            )
            for e in emails
        ]
        with running_server(database_url, args.workers) as server:
            host, port = server.host, server.port
            asyncio.run(run_http(host, port, requests[:200], None))
            with CpuMeter(server) as cpu:
                closed, statuses, seconds = asyncio.run(run_http(host, port, requests, None))
            paced, paced_statuses, _ = asyncio.run(run_http(host, port, requests, args.rate))
        sql = asyncio.run(run_sql(database_url, ws["workspace_id"], emails, None))
        sql_paced = asyncio.run(run_sql(database_url, ws["workspace_id"], emails, args.rate))
    bad = sum(1 for s in statuses + paced_statuses if s != 200)
    print(
        f"closed loop: {len(closed) / seconds:,.0f} lookups/s with {CLIENTS} clients, "
        f"{args.workers} server processes ({bad} non-200)"
    )
    c50, _ = report("  GraphQL lookup, closed loop", closed)
    print(f"  {cpu.per(len(closed), 'lookup')}")
    p50, p99 = report(f"  GraphQL lookup, paced at {args.rate:.0f}/s", paced)
    s50, _ = report("baseline raw SQL (2 statements), closed loop", sql)
    sp50, _ = report(f"baseline raw SQL (2 statements), paced at {args.rate:.0f}/s", sql_paced)
    print(f"ratio closed-loop p50 GraphQL / raw SQL: {c50 / s50:.2f}")
    print(f"ratio paced p50 GraphQL / raw SQL: {p50 / sp50:.2f}")
    met = p50 <= 5 and p99 <= 25
    print(f"target p50 <= 5 ms, p99 <= 25 ms (paced run): {'MET' if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
