"""Bounces and complaints over SMTP through `cdp inbound` and a real worker, against the classifier.

A workspace with a sending domain, a finished campaign and N deliveries, each
to a profile of its own with an email identity. For each delivery, a hard
RFC 3464 DSN (5.1.1) to its VERP return path or, for a `--complaints` share,
an RFC 5965 abuse report to the domain's feedback-loop address, built in
memory before anything is timed. `cdp inbound` (a subprocess, as in
production) takes them over SMTP from `--connections` senders; `cdp worker`
processes them. Timed from the first connection until every report is
PROCESSED, which commits with its suppression, its delivery's new status and
the audit entries. Baseline, in the same run: `reports.classify` alone over
the same messages in this process, before the run and again after it (the
ratio is to the mean of the two: the machine's speed drifts).

Checked at the end (a failed check exits non-zero): N suppressions with the
right reasons and digests, every delivery BOUNCED or COMPLAINED as its report
says, one `delivery.bounced` / `delivery.complained` audit entry each, no
report FAILED or left RECEIVED, every message accepted.

Usage: python -m bench.bounces [--reports 10000] [--connections 8] [--complaints 0.2]
"""

import argparse
import contextlib
import os
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Self
from uuid import UUID

import psutil
import psycopg

from api.settings import Settings
from bench.common import ROOT, create_workspace, env_for, machine_reference
from consent.keys import Keys
from delivery.deliverability import reports
from delivery.sending import message
from domain import migrate
from domain.ids import id_supply
from tests.support.database import APP_ROLE, create_database, drop_database, server_url
from tests.support.proxy import free_port

DOMAIN = "shop.example"
FEEDBACK_ADDRESS = f"fbl@{message.BOUNCE_LABEL}.{DOMAIN}"
TARGET_RATE = 500
POLL_SECONDS = 0.1
BOOT_TIMEOUT = 60.0
DRAIN_TIMEOUT = 900.0
READY = "is ready for action"  # dramatiq's line once a worker process has booted
LISTENING = "cdp inbound: SMTP on"


# --- the workload -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    delivery_id: UUID
    address: str
    complaint: bool
    mail_from: str
    rcpt: str
    raw: bytes


def _multipart(report_type: str, head: str, text: str, *parts: tuple[str, str]) -> bytes:
    """A multipart/report: the human-readable text, then (content type, body) parts."""
    boundary = f"b{os.urandom(12).hex()}"
    lines = [
        head + "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="{boundary}"\r\n',
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n{text}\r\n",
        *(f"--{boundary}\r\nContent-Type: {kind}\r\n\r\n{body}\r\n" for kind, body in parts),
        f"--{boundary}--\r\n",
    ]
    return "\r\n".join(lines).encode()


def _original(return_path: str, message_id: str, address: str, *, body: bool) -> str:
    """The headers (and with `body`, a short body) of the message we sent."""
    headers = (
        f"Return-Path: <{return_path}>\r\nFrom: Shop <news@{DOMAIN}>\r\nTo: {address}\r\n"
        f"Subject: Spring sale\r\nMessage-ID: {message_id}\r\n"
    )
    return headers + ("\r\nHello\r\n" if body else "")


def hard_dsn(address: str, return_path: str, message_id: str) -> bytes:
    """An RFC 3464 report of a 5.1.1, as a receiving MTA writes it, to the VERP return path."""
    head = (
        f"From: MAILER-DAEMON@mx.example.org\r\nTo: {return_path}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
    )
    status = (
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
    )
    return _multipart(
        "delivery-status", head, f"Your message to {address} could not be delivered.",
        ("message/delivery-status", status),
        ("text/rfc822-headers", _original(return_path, message_id, address, body=False)),
    )  # fmt: skip


def abuse_report(address: str, return_path: str, message_id: str) -> bytes:
    """An RFC 5965 abuse report, to the sending domain's feedback-loop address."""
    head = (
        f"From: Feedback Loop <fbl@isp.example.net>\r\nTo: {FEEDBACK_ADDRESS}\r\n"
        "Subject: Abuse report\r\n"
    )
    feedback = (
        f"Feedback-Type: abuse\r\nUser-Agent: isp-fbl/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: {address}\r\n"
    )
    return _multipart(
        "feedback-report", head, "This is an email abuse report.",
        ("message/feedback-report", feedback),
        ("message/rfc822", _original(return_path, message_id, address, body=True)),
    )  # fmt: skip


def is_complaint(i: int, share: float) -> bool:
    """Spreads the complaints evenly over the deliveries."""
    return int((i + 1) * share) > int(i * share)


def build(secret: str, count: int, share: float) -> list[Report]:
    new = id_supply(1000)
    found = []
    for i in range(count):
        delivery_id, address = new(), f"user{i}@example.org"
        return_path = message.return_path(secret, delivery_id, DOMAIN)
        message_id = message.message_id(delivery_id, DOMAIN)
        complaint = is_complaint(i, share)
        if complaint:
            raw = abuse_report(address, return_path, message_id)
            mail_from, rcpt = "fbl@isp.example.net", FEEDBACK_ADDRESS
        else:
            raw = hard_dsn(address, return_path, message_id)
            mail_from, rcpt = "", return_path  # a DSN comes from the null sender
        found.append(Report(delivery_id, address, complaint, mail_from, rcpt, raw))
    return found


def seed(database_url: str, workspace_id: UUID, work: list[Report]) -> None:
    """The sending domain, a finished campaign, and a profile, an identity and a delivery per
    report: one COPY a table, by the database owner, then ANALYZE."""
    new = id_supply(1000)
    domain_id, campaign_id, now = new(), new(), datetime.now(UTC)
    profiles = [new() for _ in work]
    with psycopg.connect(database_url) as db:
        db.execute(
            # Checked just now, so the worker's daily upkeep does not look its DNS up mid-run.
            "INSERT INTO sending_domains (workspace_id, id, domain, status, checked_at, created_at)"
            " VALUES (%s, %s, %s, 'VERIFIED', %s, %s)",
            (workspace_id, domain_id, DOMAIN, now, now),
        )
        db.execute(
            "INSERT INTO campaigns (workspace_id, id, name, status, segment_id, template_id,"
            " template_version, purpose, from_email, domain_id, started_at, finished_at)"
            " VALUES (%s, %s, 'bench', 'SENT', %s, %s, 1, 'newsletter', %s, %s, %s, %s)",
            (workspace_id, campaign_id, new(), new(), f"news@{DOMAIN}", domain_id, now, now),
        )
        with db.cursor() as cur:
            with cur.copy(
                "COPY profiles (workspace_id, id, created_at, updated_at) FROM STDIN"
            ) as copy:
                for pid in profiles:
                    copy.write_row((workspace_id, pid, now, now))
            with cur.copy(
                "COPY identities (workspace_id, kind, value, profile_id) FROM STDIN"
            ) as copy:
                for r, pid in zip(work, profiles, strict=True):
                    copy.write_row((workspace_id, "email", r.address, pid))
            with cur.copy(
                "COPY deliveries (workspace_id, id, campaign_id, profile_id, status, message_id,"
                " due_at, sent_at) FROM STDIN"
            ) as copy:
                for r, pid in zip(work, profiles, strict=True):
                    copy.write_row((workspace_id, r.delivery_id, campaign_id, pid, "SENT",
                                    message.message_id(r.delivery_id, DOMAIN), now, now))  # fmt: skip
        db.commit()
        db.autocommit = True
        db.execute("ANALYZE profiles; ANALYZE identities; ANALYZE deliveries")


def classifier_rate(work: list[Report]) -> float:
    started = time.perf_counter()
    for r in work:
        reports.classify(r.raw)
    return len(work) / (time.perf_counter() - started)


def classified_as_expected(work: list[Report]) -> list[str]:
    wrong = []
    for r in work:
        found = reports.classify(r.raw)
        expected = ("arf", "complaint") if r.complaint else ("dsn", "hard")
        if (found.kind, found.bounce_class) != expected:
            wrong.append(f"{r.address}: {found.kind}/{found.bounce_class}, expected {expected}")
    return wrong


# --- the processes ----------------------------------------------------------------------------


@dataclass
class Child:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def tail(self) -> str:
        return "".join(self.lines[-30:])


@contextmanager
def child(args: list[str], env: dict[str, str], ready: str, name: str) -> Iterator[Child]:
    """A `cdp` command, once `ready` shows on its stderr; stopped with its processes on the way
    out, whatever happened."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from api.cli.main import run; run()", *args],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    running = Child(proc)
    seen = threading.Event()

    def pump() -> None:
        for line in proc.stderr or ():
            running.lines.append(line)
            if ready in line:
                seen.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while not seen.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{running.tail()}")
        yield running
    finally:
        stop(proc)


def stop(proc: "subprocess.Popen[str]") -> None:
    """SIGTERM, then SIGKILL after 30 s; and any process of its own still left, by its id
    (psutil checks that the id is still that process's)."""
    family: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        family = psutil.Process(proc.pid).children(recursive=True)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for left in family:
        with contextlib.suppress(psutil.Error):
            left.kill()


def inbound(database_url: str, port: int) -> "contextlib.AbstractContextManager[Child]":
    return child(["inbound", "--host", "127.0.0.1", "--port", str(port)],
                 env_for(database_url), LISTENING, "cdp inbound")  # fmt: skip


def worker(
    database_url: str, processes: int | None, threads: int | None
) -> "contextlib.AbstractContextManager[Child]":
    args = ["worker"]
    if processes:
        args += ["--processes", str(processes)]
    if threads:
        args += ["--threads", str(threads)]
    env = {**env_for(database_url), "OUTBOX_RELAY_INTERVAL": "0.2", "PYTHONUNBUFFERED": "1"}
    return child(args, env, READY, "cdp worker")


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def _postgres() -> list[psutil.Process]:
    return [
        p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")
    ]


class Meter:
    """CPU seconds of the machine and of each party over a span, and peak memory."""

    def __init__(self, inbound_pid: int, worker_pid: int) -> None:
        self.pids = {"inbound": inbound_pid, "worker": worker_pid}
        self.peaks: dict[str, int] = {"inbound": 0, "worker": 0}
        self.spent: dict[str, float] = {}
        self.idle_share = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _parties(self) -> dict[str, float]:
        return {
            **{name: _cpu(_tree(pid)) for name, pid in self.pids.items()},
            "PostgreSQL": _cpu(_postgres()),
            "load generator": _cpu([psutil.Process()]),
        }

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            for name, pid in self.pids.items():
                with contextlib.suppress(psutil.Error):
                    for proc in _tree(pid):
                        self.peaks[name] = max(self.peaks[name], proc.memory_info().rss)

    def __enter__(self) -> Self:
        self._before, self._machine = self._parties(), psutil.cpu_times()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        after, machine = self._parties(), psutil.cpu_times()
        self.spent = {name: after[name] - self._before[name] for name in after}
        spent = sum(machine) - sum(self._machine)
        idle = (machine.idle - self._machine.idle) + (
            getattr(machine, "iowait", 0.0) - getattr(self._machine, "iowait", 0.0)
        )
        self.spent["machine"] = spent - idle
        self.idle_share = idle / spent if spent else 0.0


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Sending:
    accepted: int = 0
    refused: list[str] = field(default_factory=list)
    last_accepted: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def send_all(
    port: int, work: list[Report], connections: int
) -> tuple[Sending, list[threading.Thread]]:
    """Start the senders: each keeps one connection and sends the next message until none is left."""
    state, queue = Sending(), iter(work)

    def sender() -> None:
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=120)
        try:
            while True:
                with state.lock:
                    r = next(queue, None)
                if r is None:
                    return
                try:
                    smtp.sendmail(r.mail_from, [r.rcpt], r.raw)
                except smtplib.SMTPServerDisconnected as exc:
                    state.refused.append(f"{r.address}: {exc!r}")
                    smtp = smtplib.SMTP("127.0.0.1", port, timeout=120)
                    continue
                except smtplib.SMTPException as exc:
                    state.refused.append(f"{r.address}: {exc!r}")
                    continue
                at = time.perf_counter()
                with state.lock:
                    state.accepted += 1
                    state.last_accepted = max(state.last_accepted, at)
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    return state, threads


def wait_processed(
    database_url: str, workspace_id: UUID, threads: list[threading.Thread], children: list[Child]
) -> float:
    """perf_counter when the senders are done and no report is left RECEIVED (a count of the
    pending index every 100 ms)."""
    with psycopg.connect(database_url, autocommit=True) as db:
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            for c in children:
                if c.proc.poll() is not None:
                    raise RuntimeError(f"a process ended during the run:\n{c.tail()}")
            sending = any(t.is_alive() for t in threads)
            row = db.execute(
                "SELECT count(*) FROM inbound_messages WHERE workspace_id = %s"
                " AND state = 'RECEIVED'",
                (workspace_id,),
            ).fetchone()
            if not sending and row is not None and row[0] == 0:
                return time.perf_counter()
            time.sleep(POLL_SECONDS)
    raise RuntimeError(f"the reports were not all processed within {DRAIN_TIMEOUT:.0f} s")


def check(database_url: str, secret: str, workspace_id: UUID, work: list[Report]) -> list[str]:
    """What the database holds against what every report should have done; the failures."""
    keys = Keys(secret)
    want_suppressed = {
        (keys.identifier_digest(workspace_id, "email", r.address),
         "complaint" if r.complaint else "hard_bounce")
        for r in work
    }  # fmt: skip
    want_status = {r.delivery_id: "COMPLAINED" if r.complaint else "BOUNCED" for r in work}
    want_audit = {
        (str(r.delivery_id), "delivery.complained" if r.complaint else "delivery.bounced")
        for r in work
    }
    ws = (workspace_id,)
    with psycopg.connect(database_url) as db:
        suppressed = db.execute(
            "SELECT digest, reason FROM suppressions WHERE workspace_id = %s", ws
        ).fetchall()
        statuses = dict(db.execute(
            "SELECT id, status FROM deliveries WHERE workspace_id = %s", ws
        ).fetchall())  # fmt: skip
        audited = db.execute(
            "SELECT object_id, action FROM audit_log WHERE workspace_id = %s"
            " AND action IN ('delivery.bounced', 'delivery.complained')",
            ws,
        ).fetchall()
        states = dict(db.execute(
            "SELECT state, count(*) FROM inbound_messages WHERE workspace_id = %s GROUP BY state",
            ws,
        ).fetchall())  # fmt: skip
    failures = []
    got_suppressed = {(bytes(d), reason) for d, reason in suppressed}
    if len(suppressed) != len(work) or got_suppressed != want_suppressed:
        failures.append(
            f"suppressions: {len(suppressed):,} rows, {len(got_suppressed & want_suppressed):,} "
            f"of the {len(want_suppressed):,} expected (address and reason)"
        )
    updated = sum(1 for k, v in want_status.items() if statuses.get(k) == v)
    if updated != len(work):
        failures.append(
            f"deliveries: {updated:,} of {len(work):,} BOUNCED or COMPLAINED as expected"
        )
    got_audit = set(audited)
    if len(audited) != len(work) or got_audit != want_audit:
        failures.append(
            f"audit: {len(audited):,} delivery.bounced/complained entries, "
            f"{len(got_audit & want_audit):,} of the {len(want_audit):,} expected"
        )
    if states != {"PROCESSED": len(work)}:
        failures.append(f"reports by state: {states} (expected {len(work):,} PROCESSED)")
    return failures


def delays(database_url: str, workspace_id: UUID) -> list[float]:
    """Seconds from each report's arrival to its processing's commit, sorted."""
    with psycopg.connect(database_url) as db:
        rows = db.execute(
            "SELECT extract(epoch FROM processed_at - received_at) FROM inbound_messages"
            " WHERE workspace_id = %s AND processed_at IS NOT NULL ORDER BY 1",
            (workspace_id,),
        ).fetchall()
    return [float(r[0]) for r in rows]


@contextmanager
def database(keep: bool) -> Iterator[str]:
    server = server_url()
    url = create_database(server, "cdp_bench")
    try:
        migrate.upgrade(url, APP_ROLE)
        yield url
    finally:
        if keep:
            print(f"database kept: {url}")
        else:
            drop_database(server, url)


@dataclass(frozen=True)
class Timing:
    started: float
    accepted_at: float
    done_at: float
    sending: Sending


def run(
    url: str, workspace_id: UUID, work: list[Report], args: argparse.Namespace
) -> tuple[Timing, Meter]:
    port = free_port()
    with (
        inbound(url, port) as server,
        worker(url, args.worker_processes, args.worker_threads) as jobs,
    ):
        with Meter(server.proc.pid, jobs.proc.pid) as meter:
            started = time.perf_counter()
            sending, threads = send_all(port, work, args.connections)
            done_at = wait_processed(url, workspace_id, threads, [server, jobs])
        for t in threads:
            t.join()
    return Timing(started, sending.last_accepted or done_at, done_at, sending), meter


def worker_setting(given: int | None, what: str) -> int:
    """The worker's processes or threads: as given, else WORKER_PROCESSES / WORKER_THREADS, else
    the settings' default, as `cdp worker` resolves it."""
    if given:
        return given
    configured = os.environ.get(f"WORKER_{what.upper()}")
    return int(configured or Settings.model_fields[f"worker_{what}"].default)


def report(args: argparse.Namespace, timing: Timing, meter: Meter, baseline: float) -> None:
    n, sending = args.reports, timing.sending
    accept = timing.accepted_at - timing.started
    whole = timing.done_at - timing.started
    rate = n / whole
    processes = worker_setting(args.worker_processes, "processes")
    workers = f"{processes} process(es) x {worker_setting(args.worker_threads, 'threads')} threads"
    print(f"SMTP accept phase: {sending.accepted / accept:,.0f} messages/s "
          f"({sending.accepted:,} accepted in {accept:.2f} s over {args.connections} connections, "
          f"{len(sending.refused)} refused)")  # fmt: skip
    print(f"end to end (cdp inbound + cdp worker, {workers}): {rate:,.0f} reports/s "
          f"({n:,} suppressed, updated and audited {whole:.2f} s after the first connection)")  # fmt: skip
    print(f"target >= {TARGET_RATE}/s: {'MET' if rate >= TARGET_RATE else 'NOT MET'}")
    print(f"ratio end to end / classifier: {rate / baseline:.3f}")
    per = 1000 / n
    names = ("inbound", "worker", "PostgreSQL", "load generator")
    parts = ", ".join(f"{name} {meter.spent[name] * per:.2f} s" for name in names)
    rest = meter.spent["machine"] - sum(meter.spent[name] for name in names)
    print(f"machine CPU per 1,000 reports: {meter.spent['machine'] * per:.2f} s ({parts}; "
          f"the rest, {rest * per:.2f} s, the kernel and whatever else ran on the machine); "
          f"the machine was idle {meter.idle_share:.0%} of the time")  # fmt: skip
    print(f"peak RSS: inbound server {meter.peaks['inbound'] / 2**20:.0f} MB, "
          f"worker (largest process) {meter.peaks['worker'] / 2**20:.0f} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--complaints", type=float, default=0.2, help="share of ARF reports")
    parser.add_argument("--worker-processes", type=int, default=None,
                        help="cdp worker --processes (default: WORKER_PROCESSES, 1)")  # fmt: skip
    parser.add_argument("--worker-threads", type=int, default=None,
                        help="cdp worker --threads (default: WORKER_THREADS, 4)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the database; print its URL")
    args = parser.parse_args()
    print(machine_reference(), flush=True)
    secret = env_for("")["SECRET_KEY"]  # the one the server and the worker get
    work = build(secret, args.reports, args.complaints)
    complaints = sum(1 for r in work if r.complaint)
    wrong = classified_as_expected(work)
    if wrong:
        print("the classifier does not read the messages as built:", *wrong[:5], sep="\n  ")
        sys.exit(1)
    before = classifier_rate(work)
    print(f"built {len(work):,} reports ({len(work) - complaints:,} hard DSNs, {complaints:,} "
          f"ARF abuse reports; {sum(len(r.raw) for r in work) / len(work):,.0f} bytes on average)")  # fmt: skip
    print(f"classifier alone (reports.classify, one process), before the run: "
          f"{before:,.0f} messages/s", flush=True)  # fmt: skip
    with database(args.keep) as url:
        workspace_id = UUID(create_workspace(url)["workspace_id"])
        started = time.perf_counter()
        seed(url, workspace_id, work)
        print(f"seeded {len(work):,} profiles, identities and deliveries in "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
        timing, meter = run(url, workspace_id, work, args)
        failures = check(url, secret, workspace_id, work)
        waits = delays(url, workspace_id)
    after = classifier_rate(work)
    baseline = (before + after) / 2
    print(f"classifier alone, after the run: {after:,.0f} messages/s; baseline (the mean): "
          f"{baseline:,.0f} messages/s")  # fmt: skip
    report(args, timing, meter, baseline)
    if waits:
        p50, p99 = waits[len(waits) // 2], waits[min(len(waits) - 1, len(waits) * 99 // 100)]
        print(f"delay from a report's arrival to its processing: p50 {p50:.2f} s, "
              f"p99 {p99:.2f} s, max {waits[-1]:.2f} s")  # fmt: skip
    failures += [f"not accepted: {r}" for r in timing.sending.refused[:10]]
    if failures:
        print("CHECKS FAILED:", *failures, sep="\n  ")
        sys.exit(1)
    print(f"checks: {len(work):,} suppressions ({len(work) - complaints:,} hard_bounce, "
          f"{complaints:,} complaint), {len(work):,} deliveries updated, {len(work):,} audit "
          "entries of the updates, 0 FAILED: all passed")  # fmt: skip


if __name__ == "__main__":
    main()
