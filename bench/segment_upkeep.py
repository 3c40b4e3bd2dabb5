"""Ingest with 20 live segments against ingest with none, in the same run, and the upkeep delay.

Two workspaces in one database take the same load through /v1/batch
(bench.ingest's events: identify and track calls of 100,000 users), with a
real worker running: one has no segments, the other 20 of mixed kinds
(traits, computed traits, event counts in windows, identifiers, the contact
gate, a segment of a segment). The runs alternate, twice each. Printed: both
rates, their ratio (target >= 0.8), the machine's CPU per 1,000 events from
the first request until the worker is idle again (the upkeep's whole cost,
whether it ran during the ingest or after it), and the delay from an event's
arrival to the membership change it caused, from the history, while the
load runs.

Usage: python -m bench.segment_upkeep [--events 100000] [--workers 3]
"""

import argparse
import asyncio
import base64
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import psutil
import psycopg

from bench.common import (
    ROOT,
    create_workspace,
    drive,
    env_for,
    fresh_database,
    http_request,
    machine_reference,
    percentile,
    running_server,
)
from bench.ingest import PER_REQUEST, make_events

RUNS = 2
CONNECTIONS = 8
DRAIN_TIMEOUT = 600.0
SEGMENTS: list[tuple[str, dict[str, Any]]] = [
    ("pro", {"trait": "plan", "op": "eq", "value": "pro"}),
    ("free", {"trait": "plan", "op": "eq", "value": "free"}),
    ("has email", {"identifier": "email"}),
    ("no email", {"not": {"identifier": "email"}}),
    ("newsletter", {"contactable": {"channel": "email", "purpose": "newsletter"}}),
    ("buyers", {"computed": "orderCount", "op": "gte", "value": 1}),
    ("big spenders", {"computed": "totalRevenue", "op": "gte", "value": 100}),
    ("seen today", {"computed": "lastSeen", "op": "within", "value": {"days": 1}}),
    ("viewers", {"event": "Product Viewed", "within": {"days": 7}}),
    ("keen viewers",
     {"event": "Product Viewed", "within": {"days": 7}, "count": {"op": "gte", "value": 3}}),
    ("ordered", {"event": "Order Completed", "within": {"days": 30}}),
    ("repeat buyers",
     {"event": "Order Completed", "within": {"days": 30}, "count": {"op": "gte", "value": 2}}),
    ("cart abandoners", {"all": [
        {"event": "Product Added", "within": {"hours": 24}},
        {"event": "Order Completed", "within": {"hours": 24}, "count": {"op": "eq", "value": 0}},
    ]}),
    ("cart viewers", {"event": "Cart Viewed"}),
    ("scrollers", {"event": "Page Scrolled", "count": {"op": "gte", "value": 2}}),
    ("pricey products", {"event": "Product Viewed",
                         "where": [{"property": "price", "op": "gte", "value": 9}]}),
    ("pro buyers", {"all": [{"trait": "plan", "op": "eq", "value": "pro"},
                            {"event": "Order Completed"}]}),
    ("free or idle", {"any": [{"trait": "plan", "op": "eq", "value": "free"},
                              {"not": {"event": "Product Viewed", "within": {"days": 1}}}]}),
    ("no orders", {"event": "Order Completed", "count": {"op": "eq", "value": 0}}),
    ("pro viewers", {"all": [{"trait": "plan", "op": "eq", "value": "pro"},
                             {"event": "Product Viewed"}]}),
]  # fmt: skip


@contextmanager
def running_worker(database_url: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**env_for(database_url), "OUTBOX_RELAY_INTERVAL": "0.2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from api.cli.main import run; run()", "worker"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def graphql(url: str, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


def create_segments(url: str, token: str) -> None:
    for name, definition in SEGMENTS:
        graphql(
            url, token,
            "mutation($i: SegmentInput!) { createSegment(input: $i) { errors { message } } }",
            {"i": {"name": name, "definition": definition}},
        )  # fmt: skip
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        data = graphql(url, token, "{ segments(first: 100) { edges { node { state } } } }", {})
        if all(e["node"]["state"] == "READY" for e in data["segments"]["edges"]):
            return
        time.sleep(0.2)
    raise RuntimeError("the segments were not computed in time")


def requests_for(write_key: str, events: list[dict[str, object]]) -> list[bytes]:
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": auth}
    return [
        http_request(
            "POST", "/v1/batch", orjson.dumps({"batch": events[i : i + PER_REQUEST]}), headers
        )
        for i in range(0, len(events), PER_REQUEST)
    ]


def wait_drained(database_url: str, workspace_id: str) -> float:
    """Seconds until the workspace's upkeep queue is empty."""
    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() - started < DRAIN_TIMEOUT:
            row = conn.execute(
                "SELECT count(*) FROM segment_pending WHERE workspace_id = %s", (workspace_id,)
            ).fetchone()
            if row is not None and row[0] == 0:
                return time.monotonic() - started
            time.sleep(0.05)
    raise RuntimeError("the upkeep queue did not drain")


def wait_idle(worker: subprocess.Popen[bytes]) -> float:
    """Seconds until the worker has used almost no CPU for a second: follow-up jobs (changes
    announced to dependent segments, a sweep) would otherwise run into the next measurement."""
    started = time.monotonic()
    root = psutil.Process(worker.pid)
    quiet = 0
    while time.monotonic() - started < DRAIN_TIMEOUT and quiet < 2:
        before = _cpu(root)
        time.sleep(0.5)
        quiet = quiet + 1 if _cpu(root) - before < 0.025 else 0
    return time.monotonic() - started


def checkpoint(database_url: str) -> None:
    """Start each run just after a checkpoint, so that runs start alike: the first change to
    each page after one writes the whole page to the WAL."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def machine_busy() -> float:
    """CPU seconds the whole machine has spent not idle: every process, PostgreSQL's included."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _cpu(root: psutil.Process) -> float:
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def delays(database_url: str, workspace_id: str) -> list[float]:
    """For each entry, seconds from the arrival of the profile's latest event before it."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM h.at - e.received_at) FROM segment_membership_history h "
            "CROSS JOIN LATERAL (SELECT max(received_at) AS received_at FROM events e "
            "WHERE e.workspace_id = h.workspace_id AND e.profile_id = h.profile_id "
            "AND e.received_at <= h.at) e "
            "WHERE h.workspace_id = %s AND h.entered AND e.received_at IS NOT NULL",
            (workspace_id,),
        ).fetchall()
    return [float(r[0]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=3, help="API server processes")
    args = parser.parse_args()
    print(machine_reference(), flush=True)
    rates: dict[str, list[float]] = {"none": [], "20 segments": []}
    spent: dict[str, list[float]] = {kind: [] for kind in rates}
    python: dict[str, list[float]] = {kind: [] for kind in rates}
    with fresh_database() as database_url:
        spaces = {kind: [create_workspace(database_url) for _ in range(RUNS)] for kind in rates}
        with (
            running_server(database_url, args.workers) as server,
            running_worker(database_url) as worker,
        ):
            url = f"http://{server.host}:{server.port}"
            for ws in spaces["20 segments"]:
                create_segments(url, ws["api_token"])
            wait_idle(worker)
            for run in range(RUNS):
                order = list(rates) if run % 2 == 0 else list(reversed(rates))
                for kind in order:
                    ws = spaces[kind][run]
                    events = make_events(args.events, seed=100 + run)
                    requests = requests_for(ws["write_key"], events)
                    checkpoint(database_url)
                    busy, own = machine_busy(), _cpu(psutil.Process(worker.pid))
                    seconds, _, statuses = asyncio.run(
                        drive(server.host, server.port, requests, connections=CONNECTIONS)
                    )
                    sent = sum(1 for s in statuses if s == 200) * PER_REQUEST
                    rates[kind].append(sent / seconds)
                    drained = wait_drained(database_url, ws["workspace_id"])
                    idle = wait_idle(worker)
                    spent[kind].append((machine_busy() - busy) / sent * 1000)
                    python[kind].append((_cpu(psutil.Process(worker.pid)) - own) / sent * 1000)
                    print(f"  {kind}: {sent / seconds:,.0f} events/s over {seconds:.1f} s "
                          f"({len(statuses) - sent // PER_REQUEST} non-200); "
                          f"upkeep queue empty {drained:.1f} s after, worker idle "
                          f"{drained + idle:.1f} s after; {spent[kind][-1]:.2f} CPU-s "
                          "per 1,000 events until then", flush=True)  # fmt: skip
            waits = [
                d for ws in spaces["20 segments"] for d in delays(database_url, ws["workspace_id"])
            ]
    without, with_segments = (
        statistics.median(rates["none"]),
        statistics.median(rates["20 segments"]),
    )
    ratio = with_segments / without
    print(f"ingest without segments: {without:,.0f} events/s (median of {RUNS})")
    print(f"ingest with {len(SEGMENTS)} segments: {with_segments:,.0f} events/s (median of {RUNS})")
    print(
        f"ratio with / without: {ratio:.2f} (target >= 0.8: {'MET' if ratio >= 0.8 else 'NOT MET'})"
    )
    cost = statistics.median(spent["20 segments"]) - statistics.median(spent["none"])
    print(f"machine CPU per 1,000 events, from the first request until the worker is idle: "
          f"{statistics.median(spent['none']):.2f} s without segments, "
          f"{statistics.median(spent['20 segments']):.2f} s with; the upkeep's share {cost:.2f} s")  # fmt: skip
    print(f"  of which the worker process itself (Python; PostgreSQL's share is the rest): "
          f"{statistics.median(python['none']):.2f} s without segments, "
          f"{statistics.median(python['20 segments']):.2f} s with")  # fmt: skip
    if waits:
        p50, p99 = percentile(waits, 50), percentile(waits, 99)
        print(f"delay from an event's arrival to its membership entry, under this load: "
              f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms over {len(waits):,} entries")  # fmt: skip


if __name__ == "__main__":
    main()
