"""A campaign end to end into Postfix's smtp-sink, against bare smtplib into the same sink.

The campaign: a segment of N members (each with an email and newsletter
consent), snapshot, contact gate, render of the welcome starter, DKIM
signature, SMTP to `smtp-sink` on loopback, each outcome recorded; run by a
real `cdp worker`. Timed from `sendCampaign` until the campaign is SENT.
The baseline, in the same run: bare smtplib sending pre-rendered, signed
messages of the same template to the same sink over one connection.

Printed: both rates and their ratio (targets: >= 1,000 messages/s and
>= 0.5 of the baseline), CPU per message of the worker and of PostgreSQL,
and each worker process's peak memory (goal < 300 MB).

smtp-sink comes with Debian's `postfix` package; without it (and without the
rights to install it) the benchmark says so and stops.

Usage: python -m bench.send [--recipients 100000] [--processes 3] [--threads 4]
"""

import argparse
import asyncio
import contextlib
import re
import shutil
import smtplib
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Self
from uuid import UUID

import psutil
import psycopg

from bench.common import CpuMeter, Server, fresh_database, machine_reference
from cdp.segments import services as segment_services
from consent import audit
from consent.keys import Keys
from delivery.sending import campaigns, domains, message, policy, throttle
from delivery.templates import render as rendering
from delivery.templates import services as template_services
from delivery.templates.model import Recipient, RecipientProfile
from delivery.templates.starter_templates import STARTERS, content
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.conftest import new_workspace
from tests.support import factories
from tests.support.database import APP_ROLE, SECRET
from tests.support.proxy import free_port
from tests.support.worker import worker_process

ACTOR = audit.Actor.system("bench")
CHUNK = 10_000
BASELINE_MESSAGES = 20_000
PRE_RENDERED = 500
TARGET_RATE, TARGET_RATIO, MEMORY_GOAL_MB = 1000, 0.5, 300
STARTER = next(s for s in STARTERS if s.key == "welcome")


# structlog's console lines at WARNING and above, and tracebacks.
_WARNED = re.compile(r"\[(warning|error|critical)|Traceback")


def smtp_sink() -> str | None:
    found = shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if shutil.which("postconf") else None
    )
    if found:
        return found
    print("smtp-sink is missing: installing Debian's postfix package…", flush=True)
    result = subprocess.run(
        ["/usr/bin/apt-get", "install", "-y", "-q", "postfix"], capture_output=True, text=True,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )  # fmt: skip
    return shutil.which("smtp-sink") if result.returncode == 0 else None


@contextmanager
def sink(path: str) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([path, "-u", "nobody", f"127.0.0.1:{port}", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(0.5)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def seed(database_url: str, ws: UUID, count: int) -> None:
    with factories.seeding(database_url) as db:
        for start in range(0, count, CHUNK):
            n = min(CHUNK, count - start)
            ids = factories.profiles(
                db, ws, n, traits=lambda i, s=start: {"first_name": f"P{s + i}"}
            )
            factories._identities(  # noqa: SLF001 - the factories' bulk path
                db, ws, [("email", f"r{start + i}@example.org", pid) for i, pid in enumerate(ids)]
            )
        db.execute(
            "INSERT INTO consent_records (workspace_id, id, profile_id, purpose, channel, status, "
            "lawful_basis, source, actor, recorded_at) SELECT workspace_id, gen_random_uuid(), id, "
            "'newsletter', 'email', 'GRANTED', 'consent', 'bench', 'bench', now() - interval '1 day' "
            "FROM profiles WHERE workspace_id = %s",
            (ws,),
        )
        db.execute("ANALYZE profiles; ANALYZE identities; ANALYZE consent_records")
        db.commit()


async def setup(database_url: str, ws: UUID) -> UUID:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    sessions = session_factory(engine)
    try:
        async with UnitOfWork(sessions, workspace_id=ws) as uow:
            segment = await segment_services.create(
                uow, ACTOR, segment_services.SegmentInput("everyone", None, {"identifier": "email"})
            )
            await uow.commit()
        async with UnitOfWork(sessions, workspace_id=ws) as uow:
            await segment_services.recompute(uow, Keys(SECRET), segment.id)
            page = content(STARTER)
            saved = await template_services.create(uow, ACTOR, template_services.TemplateInput(
                "welcome", page.subject, page.mjml, page.preheader))  # fmt: skip
            await domains.add(uow, ACTOR, SECRET, "shop.example", ed25519=False)
            # The throttle still runs, at rates that do not hold this campaign back.
            await policy.set_policy(uow, ACTOR, policy.SendPolicy(
                sending_domain_rate=throttle.MAX_RATE, recipient_domain_rate=throttle.MAX_RATE))  # fmt: skip
            campaign = await campaigns.create(uow, ACTOR, campaigns.CampaignInput(
                "bench", segment.id, saved.template.id, "newsletter", "news@shop.example",
                from_name="Shop"))  # fmt: skip
            await uow.commit()
            return campaign.id
    finally:
        await engine.dispose()


async def pre_rendered(database_url: str, ws: UUID) -> list[message.Envelope]:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=ws) as uow:
            [domain] = await domains.list_all(uow)
            signers = await domains.signers(uow, SECRET, domain)
            sender = await template_services.sender(uow)
    finally:
        await engine.dispose()
    compiled = rendering.cached("bench-send", lambda: content(STARTER))
    found = []
    for i in range(PRE_RENDERED):
        person = Recipient(RecipientProfile(str(i), {"first_name": f"P{i}"}, {}),
                           unsubscribe_url=f"https://cdp.example/unsubscribe/{i:08x}")  # fmt: skip
        email = rendering.render(compiled, person, sender)
        found.append(message.build(
            email, message.Addressing("news@shop.example", f"r{i}@example.org", "Shop"),
            delivery_id=uuid.uuid4(), domain="shop.example", unsubscribe_url=person.unsubscribe_url,
            feedback_id="bench:cdp", at=datetime.now(UTC), secret=SECRET, signers=signers,
        ))  # fmt: skip
    return found


def baseline_rate(port: int, envelopes: list[message.Envelope]) -> float:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        started = time.perf_counter()
        for i in range(BASELINE_MESSAGES):
            e = envelopes[i % len(envelopes)]
            smtp.sendmail(e.sender, [e.recipient], e.data)
        return BASELINE_MESSAGES / (time.perf_counter() - started)


class PeakMemory:
    def __init__(self, root: int) -> None:
        self.root = psutil.Process(root)
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for proc in self.root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    rss = proc.memory_info().rss
                    self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), rss)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def counts(db: psycopg.Connection[Any], campaign_id: UUID) -> dict[str, int]:
    rows = db.execute(
        "SELECT status, count(*) FROM deliveries WHERE campaign_id = %s GROUP BY status",
        (campaign_id,),
    ).fetchall()
    return {str(k): int(v) for k, v in rows}


def wait_until_sent(db: psycopg.Connection[Any], campaign_id: UUID) -> str:
    """The campaign's status once it has left SENDING, looked up by its key every 0.2 s on one
    connection: a count of the deliveries each time, or a connection each time, took a
    noticeable share of the machine from the run it measures."""
    while True:
        row = db.execute("SELECT status FROM campaigns WHERE id = %s", (campaign_id,)).fetchone()
        db.commit()
        if row is None or row[0] != "SENDING":
            return str(row[0]) if row else "?"
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    print(machine_reference(), flush=True)
    path = smtp_sink()
    if path is None:
        print("skipped: smtp-sink (Debian's postfix package) is not installed and cannot be")
        return
    with fresh_database() as database_url, sink(path) as port:
        ws = new_workspace(database_url, "bench").workspace.id
        started = time.perf_counter()
        seed(database_url, ws, args.recipients)
        campaign_id = asyncio.run(setup(database_url, ws))
        print(f"seeded {args.recipients:,} recipients in {time.perf_counter() - started:.1f} s",
              flush=True)  # fmt: skip
        envelopes = asyncio.run(pre_rendered(database_url, ws))
        base = baseline_rate(port, envelopes)
        print(f"baseline: bare smtplib, one connection, {len(envelopes[0].data):,}-byte "
              f"messages: {base:,.0f} messages/s", flush=True)  # fmt: skip
        env = {"SMTP_PORT": str(port), "PUBLIC_URL": "https://cdp.example", "LOG_LEVEL": "WARNING"}
        with worker_process(database_url, extra_env=env, processes=args.processes,
                            threads=args.threads) as worker:  # fmt: skip
            meter = CpuMeter(Server("127.0.0.1", 0, worker.proc.pid))
            with (
                meter,
                PeakMemory(worker.proc.pid) as memory,
                factories.seeding(database_url) as db,
            ):
                started = time.perf_counter()
                asyncio.run(_send(database_url, ws, campaign_id))
                state = wait_until_sent(db, campaign_id)
                elapsed = time.perf_counter() - started
                by_status = counts(db, campaign_id)
            logged = [line.rstrip() for line in worker.lines if _WARNED.search(line)]
        # Again after the campaign, the worker stopped: the machine's speed drifts over a
        # run this long, and the ratio is taken to the mean of the two.
        after = baseline_rate(port, envelopes)
        print(f"baseline again, after the campaign: {after:,.0f} messages/s", flush=True)
        base = (base + after) / 2
    sent = by_status.get("SENT", 0)
    rate = args.recipients / elapsed
    print(f"campaign: {state}, {by_status} in {elapsed:.1f} s")
    print(f"end to end ({args.processes} worker processes x {args.threads} threads): "
          f"{rate:,.0f} messages/s (target >= {TARGET_RATE:,}: "
          f"{'MET' if rate >= TARGET_RATE else 'NOT MET'})")  # fmt: skip
    print(f"ratio to the baseline (the mean of both, {base:,.0f}/s): {rate / base:.3f} "
          f"(target >= {TARGET_RATIO}: "
          f"{'MET' if rate / base >= TARGET_RATIO else 'NOT MET'})")  # fmt: skip
    per = max(sent, 1)
    print(f"CPU per message: worker {meter.server_seconds / per * 1000:.2f} ms, "
          f"PostgreSQL {meter.postgres_seconds / per * 1000:.2f} ms; "
          f"the machine idle {meter.idle_share:.0%} of the time")  # fmt: skip
    print(f"worker log: {len(logged)} warnings and errors" + "".join(
        f"\n  {line[:300]}" for line in dict.fromkeys(logged[:200])))  # fmt: skip
    peaks = sorted(memory.peaks.values(), reverse=True)
    peak_mb = peaks[0] / 2**20 if peaks else 0.0
    print(f"peak memory of a worker process: {peak_mb:.0f} MB (goal < {MEMORY_GOAL_MB} MB: "
          f"{'MET' if peak_mb < MEMORY_GOAL_MB else 'NOT MET'})")  # fmt: skip


async def _send(database_url: str, ws: UUID, campaign_id: UUID) -> None:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=ws) as uow:
            await campaigns.send(uow, ACTOR, campaign_id)
            await uow.commit()
    finally:
        await engine.dispose()


if __name__ == "__main__":
    main()
