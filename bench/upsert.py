"""upsertProfiles in batches of 1,000 over HTTP GraphQL.

Baseline: COPY of the same profiles and identities straight into their tables.
Target (issue 3): at least 10,000 profiles/s.

Usage: python -m bench.upsert [--profiles 50000] [--connections 4] [--workers 2]
"""

import argparse
import asyncio
import time
import uuid

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

BATCH = 1000
MUTATION = (
    "mutation($input: [ProfileUpsertInput!]!) { upsertProfiles(input: $input) "
    "{ profiles { id } errors { index code } } }"
)


def make_items(count: int, offset: int = 0) -> list[dict[str, object]]:
    return [
        {
            "identifiers": [
                {"kind": "email", "value": f"crm-{offset + i}@example.com"},
                {"kind": "user_id", "value": f"crm-{offset + i}"},
            ],
            "traits": {"name": f"Customer {offset + i}", "plan": "pro", "city": "Oslo"},
        }
        for i in range(count)
    ]


def copy_baseline(database_url: str, workspace_id: str, items: list[dict[str, object]]) -> float:
    with psycopg.connect(database_url) as conn:
        started = time.perf_counter()
        ids = [uuid.uuid4() for _ in items]
        with conn.cursor() as cur:
            with cur.copy("COPY profiles (workspace_id, id, traits) FROM STDIN") as copy:
                for pid, item in zip(ids, items, strict=True):
                    copy.write_row((workspace_id, pid, orjson.dumps(item["traits"]).decode()))
            with cur.copy(
                "COPY identities (workspace_id, kind, value, profile_id) FROM STDIN"
            ) as copy:
                for pid, item in zip(ids, items, strict=True):
                    for ident in item["identifiers"]:  # type: ignore[attr-defined]
                        copy.write_row((workspace_id, ident["kind"], "b-" + ident["value"], pid))
        conn.commit()
        return len(items) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=50_000)
    # A CRM sync sends a few calls at once; with two, a server process waits
    # on PostgreSQL for most of each call.
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--workers", type=int, default=2, help="API server processes (this machine has 2 cores)"
    )
    args = parser.parse_args()
    print(machine_reference(), flush=True)
    with fresh_database() as database_url:
        ws = create_workspace(database_url)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ws['api_token']}"}
        requests = [
            http_request(
                "POST",
                "/graphql",
                orjson.dumps({"query": MUTATION, "variables": {"input": make_items(BATCH, i)}}),
                headers,
            )
            for i in range(0, args.profiles, BATCH)
        ]
        with running_server(database_url, args.workers) as server:
            asyncio.run(drive(server.host, server.port, requests[:2], connections=1))
            with CpuMeter(server) as cpu:
                seconds, latencies, statuses = asyncio.run(
                    drive(
                        server.host,
                        server.port,
                        requests[2:],
                        connections=args.connections,
                        reconnect=True,
                    )
                )
        done = sum(1 for s in statuses if s == 200) * BATCH
        rate = done / seconds
        baseline = copy_baseline(database_url, ws["workspace_id"], make_items(args.profiles))
        with psycopg.connect(database_url) as conn:
            live = conn.execute("SELECT count(*) FROM identities WHERE kind = 'user_id'").fetchone()
    print(f"upsertProfiles: {rate:,.0f} profiles/s over {seconds:.1f}s "
          f"({len(statuses)} calls of {BATCH}, {args.connections} senders, a connection per call, "
          f"{args.workers} server processes)")  # fmt: skip
    print(f"  call latency p50 {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms")
    print(f"  {cpu.per(len(statuses), f'call of {BATCH}')}")
    print(f"baseline raw COPY of profiles + identities: {baseline:,.0f} profiles/s")
    print(f"ratio upsert / COPY: {rate / baseline:.3f}")
    print(f"target 10,000 profiles/s: {'MET' if rate >= 10_000 else 'NOT MET'}")
    print(f"user_id identities stored: {live[0] if live else 0:,}")


if __name__ == "__main__":
    main()
