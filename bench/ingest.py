"""Ingest through /v1/batch: 100 events a request, 20% identify and 80% track, 100,000 users.

Baseline: raw COPY of the same event rows into the events table, in the same run.
Target (issue 3): at least 15,000 events/s sustained.

The senders keep their connections open, as the Segment SDKs do (analytics-python
posts through one `requests` session); --reconnect opens one per request instead.

Usage: python -m bench.ingest [--events 200000] [--connections 8] [--workers 3] [--reconnect]
"""

import argparse
import asyncio
import base64
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import psycopg

from bench.common import (
    CpuMeter,
    create_workspace,
    drive,
    fresh_database,
    http_request,
    machine_reference,
    running_server,
)

USERS = 100_000
PER_REQUEST = 100
PRODUCTS = [f"sku-{i}" for i in range(500)]
EVENTS = ["Product Viewed", "Product Added", "Page Scrolled", "Order Completed", "Cart Viewed"]


def make_events(count: int, seed: int = 7) -> list[dict[str, object]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    events: list[dict[str, object]] = []
    for i in range(count):
        user = f"user-{rng.randrange(USERS)}"
        at = (now - timedelta(seconds=rng.randrange(86400))).isoformat()
        if i % 5 == 0:
            events.append(
                {
                    "type": "identify",
                    "userId": user,
                    "messageId": uuid.uuid4().hex,
                    "timestamp": at,
                    "traits": {"email": f"{user}@example.com", "plan": rng.choice(["free", "pro"])},
                    "context": {"ip": "203.0.113.7", "library": {"name": "bench"}},
                }
            )
        else:
            events.append(
                {
                    "type": "track",
                    "userId": user,
                    "event": rng.choice(EVENTS),
                    "messageId": uuid.uuid4().hex,
                    "timestamp": at,
                    "properties": {"product_id": rng.choice(PRODUCTS), "price": 9.5, "revenue": 19},
                    "context": {"ip": "203.0.113.7", "page": {"path": "/p"}},
                }
            )
    return events


def copy_baseline(database_url: str, workspace_id: str, events: list[dict[str, object]]) -> float:
    """Events/s for COPY of the same rows straight into the events table."""
    profile = uuid.uuid4()
    with psycopg.connect(database_url) as conn:
        month = datetime.now(UTC).date().replace(day=1)
        for m in {month, (month - timedelta(days=1)).replace(day=1)}:
            conn.execute("SELECT cdp_ensure_event_partition(%s)", (m,))
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY events (workspace_id, id, timestamp, profile_id, type, name, message_id, "
                "received_at, properties, context) FROM STDIN"
            ) as copy,
        ):
            received = datetime.now(UTC)
            for e in events:
                copy.write_row(
                    (
                        workspace_id,
                        uuid.uuid4(),
                        e["timestamp"],
                        profile,
                        e["type"],
                        e.get("event"),
                        e["messageId"],
                        received,
                        orjson.dumps(e.get("properties", {})).decode(),
                        orjson.dumps(e.get("context", {})).decode(),
                    )
                )
        conn.commit()
        return len(events) / (time.perf_counter() - started)


@dataclass
class Load:
    rate: float
    seconds: float
    latencies: list[float]
    cpu: CpuMeter
    requests: int
    bad: int


def measure(database_url: str, write_key: str, events: list[dict[str, object]],
            args: argparse.Namespace) -> Load:  # fmt: skip
    """Send the events through /v1/batch on a running server; the rate stored, and its costs."""
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    requests = [
        http_request(
            "POST",
            "/v1/batch",
            orjson.dumps({"batch": events[i : i + PER_REQUEST]}),
            {"Content-Type": "application/json", "Authorization": auth},
        )
        for i in range(0, len(events), PER_REQUEST)
    ]
    with running_server(database_url, args.workers) as server:
        warm, rest = requests[:20], requests[20:]
        asyncio.run(drive(server.host, server.port, warm, connections=args.connections))
        with CpuMeter(server) as cpu:
            seconds, latencies, statuses = asyncio.run(
                drive(server.host, server.port, rest, connections=args.connections,
                      reconnect=args.reconnect)
            )  # fmt: skip
    sent = sum(1 for s in statuses if s == 200) * PER_REQUEST
    return Load(sent / seconds, seconds, latencies, cpu, len(rest),
                sum(1 for s in statuses if s != 200))  # fmt: skip


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--workers",
        type=int,
        default=3,
        help=(
            "API server processes: one more than this machine's 2 cores, since each process "
            "stores a write key's requests one transaction at a time and waits for PostgreSQL "
            "during part of it"
        ),
    )
    parser.add_argument(
        "--reconnect", action="store_true", help="open a connection per request instead"
    )
    return parser


def main() -> None:
    args = arguments().parse_args()
    print(machine_reference(), flush=True)
    events = make_events(args.events)
    with fresh_database() as database_url:
        ws = create_workspace(database_url)
        load = measure(database_url, ws["write_key"], events, args)
        baseline = copy_baseline(database_url, ws["workspace_id"], make_events(len(events), seed=8))
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT count(*) FROM events").fetchone()
    rate, seconds, latencies, cpu, rest, bad = (
        load.rate,
        load.seconds,
        load.latencies,
        load.cpu,
        load.requests,
        load.bad,
    )
    connections = "a connection per request" if args.reconnect else "connections kept open"
    print(f"ingest /v1/batch: {rate:,.0f} events/s over {seconds:.1f}s ({rest} requests, "
          f"{args.workers} server processes, "
          f"{args.connections} senders, {connections}, {bad} non-200)")  # fmt: skip
    print(f"  request latency p50 {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms")
    print(f"  {cpu.per(rest, f'request of {PER_REQUEST} events')}")
    print(f"baseline raw COPY into events: {baseline:,.0f} events/s")
    print(f"ratio ingest / COPY: {rate / baseline:.3f}")
    print(f"target 15,000 events/s: {'MET' if rate >= 15_000 else 'NOT MET'}")
    print(f"rows in events after both: {stored[0] if stored else 0:,}")


if __name__ == "__main__":
    main()
