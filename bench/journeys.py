"""Journeys: waiting is free, due enrollments move fast, triggers cost ingest little, waits end on time.

Parts (all by default; pick with --part):
- advance: N enrollments (default 100,000) due at the same moment, each
  moved through a wait's end and a send step (its delivery queued for the
  sending pipeline) by the real timer code, in one process. Baseline: a bare
  claim-and-update loop over the same rows (psycopg, the same batch size).
  Target: >= 2,000 enrollments/s.
- idle: a real `cdp worker` with 1,000,000 enrollments waiting (not due) and
  with none: its CPU as a share of one core. Target: < 2% with a million.
- ingest: bench.ingest's /v1/batch load into a fresh database without
  journeys, then into one with 10 active event-triggered journeys that the
  load's events trigger and exit. Target: >= 0.8 of the rate without.
- lateness: a real `cdp worker`; enrollments whose waits end spread over
  20 s; how late each moved on after its due time. Target: p99 < 2 s.

Usage: python -m bench.journeys [--part advance|idle|ingest|lateness] [--enrollments 100000]
"""

import argparse
import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psutil
import psycopg

from bench.common import create_workspace, fresh_database, machine_reference
from consent import audit
from delivery.journeys import actors, services
from delivery.sending import domains, throttle
from delivery.sending import policy as rules
from delivery.templates import services as template_services
from delivery.templates.starter_templates import by_key, content
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.support import factories
from tests.support.database import APP_ROLE, SECRET
from tests.support.jobs import as_worker
from tests.support.worker import worker_process

ACTOR = audit.Actor.system("bench")
BATCH = 500
CHUNK = 50_000


def _send_step(template_id: UUID) -> dict[str, Any]:
    return {"send": {"templateId": str(template_id), "purpose": "marketing",
                     "fromEmail": "hello@shop.example"}}  # fmt: skip


async def _in_uow(database_url: str, ws: UUID, work: Callable[[UnitOfWork], Any]) -> Any:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=ws) as uow:
            result = await work(uow)
            await uow.commit()
            return result
    finally:
        await engine.dispose()


async def _shop(uow: UnitOfWork) -> UUID:
    page = content(by_key("abandoned_cart"))
    saved = await template_services.create(uow, ACTOR, template_services.TemplateInput(
        "cart", page.subject, page.mjml, page.preheader))  # fmt: skip
    await domains.add(uow, ACTOR, SECRET, "shop.example", ed25519=False)
    await rules.set_policy(uow, ACTOR, rules.SendPolicy(
        sending_domain_rate=throttle.MAX_RATE, recipient_domain_rate=throttle.MAX_RATE))  # fmt: skip
    return saved.template.id


def _journey(database_url: str, ws: UUID, definition: dict[str, Any], name: str) -> UUID:
    async def make(uow: UnitOfWork) -> UUID:
        row = await services.create(uow, ACTOR, services.JourneyInput(name, definition))
        await services.activate(uow, ACTOR, row.id)
        return row.id

    return asyncio.run(_in_uow(database_url, ws, make))  # type: ignore[no-any-return]


def _setup(database_url: str) -> tuple[UUID, UUID]:
    ws = UUID(create_workspace(database_url)["workspace_id"])
    return ws, asyncio.run(_in_uow(database_url, ws, _shop))


def _profiles(database_url: str, ws: UUID, count: int) -> None:
    with factories.seeding(database_url) as db:
        for start in range(0, count, CHUNK):
            factories.profiles(db, ws, min(CHUNK, count - start))
        db.commit()


_PLACE = (
    "INSERT INTO journey_enrollments (workspace_id, id, journey_id, version, profile_id, state, "
    " step, waiting, wake_at, event, trigger_at, entered_at) "
    "SELECT p.workspace_id, gen_random_uuid(), %(j)s, 1, p.id, 'ACTIVE', %(step)s, true, "
    " p.due, jsonb_build_object('name', 'Product Added', 'due', p.due), now(), now() "
    "FROM (SELECT workspace_id, id, %(wake)s + (row_number() OVER (ORDER BY id) %% %(spread)s) "
    " * interval '1 millisecond' AS due FROM profiles WHERE workspace_id = %(ws)s LIMIT %(n)s) p"
)


def _place(database_url: str, ws: UUID, journey: UUID, n: int, wake: datetime, *,
           spread_ms: int = 1) -> None:  # fmt: skip
    """`n` enrollments waiting at the journey's first step (a wait) until `wake` (+ spread)."""
    with psycopg.connect(database_url) as db:
        db.execute(_PLACE, {"ws": ws, "j": journey, "step": "s1", "wake": wake, "n": n,
                            "spread": max(spread_ms, 1)})  # fmt: skip
        db.execute("ANALYZE journey_enrollments")


def _reset(database_url: str, ws: UUID, wake: datetime) -> None:
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("DELETE FROM deliveries WHERE workspace_id = %s", (ws,))
        db.execute("DELETE FROM outbox")
        db.execute("UPDATE journey_enrollments SET state = 'ACTIVE', step = 's1', waiting = true, "
                   "wake_at = %s, finished_at = NULL WHERE workspace_id = %s", (wake, ws))  # fmt: skip
        db.execute("VACUUM ANALYZE journey_enrollments")


def _bare_loop(database_url: str, ws: UUID) -> tuple[int, float]:
    """Claim due rows a batch at a time and mark them done: the least a timer can do."""
    moved, started = 0, time.perf_counter()
    with psycopg.connect(database_url) as db:
        while True:
            rows = db.execute(
                "SELECT id FROM journey_enrollments WHERE workspace_id = %s AND state = 'ACTIVE' "
                "AND wake_at IS NOT NULL AND wake_at <= now() ORDER BY wake_at LIMIT %s "
                "FOR UPDATE SKIP LOCKED", (ws, BATCH),
            ).fetchall()  # fmt: skip
            if not rows:
                break
            db.execute("UPDATE journey_enrollments SET state = 'COMPLETED', wake_at = NULL, "
                       "waiting = false, finished_at = now() WHERE workspace_id = %s "
                       "AND id = ANY(%s)", (ws, [r[0] for r in rows]))  # fmt: skip
            db.commit()
            moved += len(rows)
    return moved, time.perf_counter() - started


def part_advance(n: int) -> None:
    with fresh_database() as url:
        ws, template = _setup(url)
        _profiles(url, ws, n)
        journey = _journey(url, ws, {"trigger": {"event": "Product Added"},
                                     "steps": [{"wait": {"hours": 1}}, _send_step(template)]},
                           "cart")  # fmt: skip
        due = datetime.now(UTC) - timedelta(seconds=1)
        _place(url, ws, journey, n, due)
        started = time.perf_counter()
        done = as_worker(url, lambda: actors.run_workspace(ws))
        engine_seconds = time.perf_counter() - started
        with psycopg.connect(url) as db:
            queued = db.execute("SELECT count(*) FROM deliveries WHERE workspace_id = %s",
                                (ws,)).fetchone()  # fmt: skip
        _reset(url, ws, due)
        bare, bare_seconds = _bare_loop(url, ws)
    rate, bare_rate = done.moved / engine_seconds, bare / bare_seconds
    print(
        f"advance: {done.moved:,} due enrollments moved (wait over, send step, done) in "
        f"{engine_seconds:.1f}s: {rate:,.0f}/s; {queued[0] if queued else 0:,} deliveries queued"
    )
    print(
        f"baseline bare claim-and-update loop: {bare:,} in {bare_seconds:.1f}s: {bare_rate:,.0f}/s"
    )
    print(f"ratio engine / bare loop: {rate / bare_rate:.3f}")
    print(f"target 2,000 enrollments/s: {'MET' if rate >= 2000 else 'NOT MET'}")


def _cpu(pid: int) -> float:
    process = psutil.Process(pid)
    found = process.cpu_times().user + process.cpu_times().system
    for child in process.children(recursive=True):
        try:
            times = child.cpu_times()
            found += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return found


# `cdp worker` as it runs in production: its defaults, without the tests' probe actors.
PRODUCTION = {"LOG_LEVEL": "WARNING", "OUTBOX_RELAY_INTERVAL": "2.0"}


def _idle_share(url: str, seconds: float, broker: str | None) -> float:
    with worker_process(url, broker, extra_env=PRODUCTION, threads=4, modules=()) as worker:
        time.sleep(15)  # booted; the start-up tasks (maintenance, sweeps) done
        before, started = _cpu(worker.proc.pid), time.monotonic()
        time.sleep(seconds)
        return (_cpu(worker.proc.pid) - before) / (time.monotonic() - started)


def part_idle(n: int, seconds: float, broker: str | None) -> None:
    with fresh_database() as url:
        ws, template = _setup(url)
        empty = _idle_share(url, seconds, broker)
        _profiles(url, ws, n)
        journey = _journey(url, ws, {"trigger": {"event": "Product Added"},
                                     "steps": [{"wait": {"days": 30}}, _send_step(template)]},
                           "waiting")  # fmt: skip
        _place(url, ws, journey, n, datetime.now(UTC) + timedelta(days=30), spread_ms=86_400_000)
        loaded = _idle_share(url, seconds, broker)
    kind = (broker or "postgresql").split(":")[0]
    print(
        f"idle worker ({kind} broker) with {n:,} waiting enrollments: {loaded:.2%} of a core "
        f"over {seconds:.0f}s"
    )
    print(
        f"baseline: the same worker with none: {empty:.2%} of a core "
        f"(journeys add {loaded - empty:+.2%})"
    )
    print(f"ratio: {loaded / empty if empty else float('nan'):.2f}")
    print(f"target < 2% of a core: {'MET' if loaded < 0.02 else 'NOT MET'}")


def part_lateness(n: int, spread_s: int) -> None:
    with fresh_database() as url:
        ws, template = _setup(url)
        _profiles(url, ws, n)
        journey = _journey(url, ws, {"trigger": {"event": "Product Added"},
                                     "steps": [{"wait": {"seconds": 1}}, _send_step(template)]},
                           "late")  # fmt: skip
        with worker_process(url, extra_env=PRODUCTION, threads=4, modules=()):
            time.sleep(5)
            start = datetime.now(UTC) + timedelta(seconds=2)
            _place(url, ws, journey, n, start, spread_ms=spread_s * 1000)
            with psycopg.connect(url, autocommit=True) as db:
                deadline = time.monotonic() + spread_s + 60
                while time.monotonic() < deadline:
                    left = db.execute("SELECT count(*) FROM journey_enrollments WHERE state = "
                                      "'ACTIVE'").fetchone()  # fmt: skip
                    if left and left[0] == 0:
                        break
                    time.sleep(0.5)
                late = [r[0] for r in db.execute(
                    "SELECT extract(epoch FROM finished_at - (event->>'due')::timestamptz) "
                    "FROM journey_enrollments").fetchall()]  # fmt: skip
    late = sorted(float(x) for x in late if x is not None)
    p99 = late[int(len(late) * 0.99) - 1] if late else float("nan")
    print(
        f"lateness: {len(late):,} waits ending over {spread_s}s; after their due time "
        f"p50 {late[len(late) // 2]:.2f}s, p99 {p99:.2f}s, max {late[-1]:.2f}s"
    )
    print("baseline: the timer looks for due enrollments every 1.0 s (api/worker.py)")
    print(f"target p99 < 2 s: {'MET' if p99 < 2 else 'NOT MET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=["advance", "idle", "ingest", "lateness"])
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--waiting", type=int, default=1_000_000)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--late", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="ingest runs of each kind")
    parser.add_argument("--broker", help="BROKER_URL for the idle worker (default: PostgreSQL)")
    args = parser.parse_args()
    print(machine_reference(), flush=True)
    parts = [args.part] if args.part else ["advance", "idle", "ingest", "lateness"]
    for part in parts:
        if part == "advance":
            part_advance(args.enrollments)
        elif part == "idle":
            part_idle(args.waiting, args.idle_seconds, args.broker)
        elif part == "lateness":
            part_lateness(args.late, 20)
        else:
            from bench.journeys_ingest import part_ingest  # noqa: PLC0415 - one part

            part_ingest(rounds=args.rounds)
        print(flush=True)


if __name__ == "__main__":
    main()
