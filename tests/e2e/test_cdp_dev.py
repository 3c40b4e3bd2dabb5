"""`cdp dev` end to end: the real command, the embedded PostgreSQL, a real worker.

Each run starts the whole process tree, so the tests are marked slow.
"""

import contextlib
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-c", "from api.cli.main import run; run()"]
START_TIMEOUT = 90.0
# The worker gets 10 s to stop, uvicorn 5 s to drain; PostgreSQL stops on exit.
STOP_TIMEOUT = 40.0
POSTGRES_STOP_TIMEOUT = 15.0
COMMAND_TIMEOUT = 60.0
WORKSPACE_QUERY = "{ workspace { id name } }"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServer:
    """One `cdp dev` subprocess, with its output kept in files (a full pipe would block it)."""

    def __init__(self, env: dict[str, str], logs: Path, name: str) -> None:
        self.env = env
        self.data_dir = Path(env["DATA_DIR"])
        self.base_url = f"http://127.0.0.1:{env['PORT']}"
        self.stdout_path = logs / f"{name}.out"
        self.stderr_path = logs / f"{name}.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen([*CLI, "dev"], env=env, stdout=out, stderr=err)
        self.postmaster: psutil.Process | None = None

    def output(self) -> str:
        return (
            f"--- stdout ---\n{self.stdout_path.read_text(errors='replace')}\n"
            f"--- stderr ---\n{self.stderr_path.read_text(errors='replace')}"
        )

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"cdp dev exited with {self.proc.returncode}\n{self.output()}")
            try:
                response = httpx.get(f"{self.base_url}/healthz", timeout=2.0)
            except httpx.HTTPError as exc:
                last = repr(exc)
            else:
                if response.status_code == 200:
                    assert response.json() == {"status": "ok"}
                    self.postmaster = self._read_postmaster()
                    return
                last = f"HTTP {response.status_code}"
            time.sleep(0.5)
        pytest.fail(f"/healthz not ready within {START_TIMEOUT} s ({last})\n{self.output()}")

    def _read_postmaster(self) -> psutil.Process:
        pid_file = self.data_dir / "pgdata" / "postmaster.pid"
        pid = int(pid_file.read_text().splitlines()[0])
        return psutil.Process(pid)

    def descendants(self, at_least: int) -> list[psutil.Process]:
        """The process tree under `cdp dev`, once it holds `at_least` processes."""
        deadline = time.monotonic() + START_TIMEOUT
        found: list[psutil.Process] = []
        while time.monotonic() < deadline:
            found = psutil.Process(self.proc.pid).children(recursive=True)
            if len(found) >= at_least:
                return found
            time.sleep(0.2)
        pytest.fail(f"expected {at_least} child processes, saw {found}\n{self.output()}")

    def wait_for_output(self, text: str) -> None:
        """The banner follows readiness by up to a tick of the supervision loop."""
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if text in self.stdout_path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        pytest.fail(f"{text!r} not printed by cdp dev\n{self.output()}")

    def stop(self, signum: signal.Signals) -> int:
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"cdp dev did not exit within {STOP_TIMEOUT} s of {signum.name}\n{self.output()}"
            )

    def kill_everything(self) -> None:
        """Last-resort cleanup after a failure: no process or server outlives the test."""
        if self.proc.poll() is None:
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in psutil.Process(self.proc.pid).children(recursive=True):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        child.kill()
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.postmaster is not None and _alive(self.postmaster):
            # SIGINT is PostgreSQL's "fast" shutdown.
            with contextlib.suppress(psutil.NoSuchProcess):
                self.postmaster.send_signal(signal.SIGINT)
                self.postmaster.wait(timeout=10)


def _alive(process: psutil.Process) -> bool:
    # A zombie has exited; it only waits for its parent to reap it.
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextlib.contextmanager
def dev_server(env: dict[str, str], logs: Path, name: str) -> Iterator[DevServer]:
    server = DevServer(env, logs, name)
    try:
        yield server
    finally:
        server.kill_everything()


def stop_cleanly(server: DevServer, signum: signal.Signals) -> None:
    # A worker main process and at least one dramatiq worker process under it.
    children = server.descendants(at_least=2)
    assert server.postmaster is not None
    assert _alive(server.postmaster)

    code = server.stop(signum)

    assert code == 0, server.output()
    assert "stopped" in server.stderr_path.read_text()
    survivors = [child for child in children if _alive(child)]
    assert survivors == [], f"children survived cdp dev: {survivors}\n{server.output()}"
    deadline = time.monotonic() + POSTGRES_STOP_TIMEOUT
    while _alive(server.postmaster) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(server.postmaster), "the embedded PostgreSQL is still running"


def graphql_workspace(base_url: str, token: str) -> dict[str, str]:
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": WORKSPACE_QUERY},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["workspace"]


def create_workspace(env: dict[str, str], name: str) -> dict[str, str]:
    result = subprocess.run(
        [*CLI, "workspace", "create", name, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def post_large_batch(base_url: str, write_key: str) -> None:
    """7,500 events in one request, over the embedded server's Unix socket.

    Its write is larger than the socket's buffers, which once left the server
    waiting for the rest of the statement while the client waited for an answer.
    """
    batch = [{"type": "track", "userId": f"big-{i}", "event": "Seen"} for i in range(7_500)]
    started = time.monotonic()
    response = httpx.post(
        f"{base_url}/v1/batch", json={"batch": batch}, auth=(write_key, ""), timeout=60.0
    )
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 20
    small = httpx.post(
        f"{base_url}/v1/track",
        json={"userId": "after-the-batch", "event": "Seen"},
        auth=(write_key, ""),
        timeout=10.0,
    )
    assert small.status_code == 200, small.text


def send_mail(port: int, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["To"] = "someone@example.com"
    message["Subject"] = subject
    message.set_content("Hello from the end-to-end test.")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message)


def graphql(base_url: str, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def send_test_email(base_url: str, token: str) -> str:
    """Save a template, send it as a test through the running `cdp dev`; its subject."""
    mjml = (
        "<mjml><mj-body><mj-section><mj-column>"
        '<mj-text>Hi {{ profile.traits.first_name | default: "there" }}</mj-text>'
        '<mj-text>{{ workspace.postal_address }} <a href="{{ unsubscribe_url }}">Unsubscribe</a>'
        "</mj-text></mj-column></mj-section></mj-body></mjml>"
    )
    subject = f"Template e2e {time.time_ns()}"
    saved = graphql(
        base_url, token,
        "mutation($i: TemplateInput!) { createTemplate(input: $i) { template { id } errors { message } } }",
        {"i": {"name": subject, "subject": subject, "mjml": mjml}},
    )["createTemplate"]  # fmt: skip
    assert saved["errors"] == [], saved
    sent = graphql(
        base_url, token,
        'mutation($t: ID!) { sendTestEmail(templateId: $t, to: "qa@example.com") { sent errors { message } } }',
        {"t": saved["template"]["id"]},
    )["sendTestEmail"]  # fmt: skip
    assert sent == {"sent": True, "errors": []}, sent
    return f"[Test] {subject}"


def wait_for_mail(folder: Path, subject: str) -> Path:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        for path in sorted(folder.glob("*.eml")):
            if f"Subject: {subject}" in path.read_text(errors="replace"):
                return path
        time.sleep(0.1)
    pytest.fail(f"no .eml with subject {subject!r} in {folder}")


@pytest.fixture
def dev_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DATABASE_URL", "BROKER_URL", "PUBLIC_URL", "SECRET_KEY"):
        env.pop(name, None)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env.update(
        DATA_DIR=str(data_dir),
        ENV="development",
        HOST="127.0.0.1",
        PORT=str(_free_port()),
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(_free_port()),
        WORKER_PROCESSES="1",
    )
    return env


def test_cdp_dev_runs_everything_and_stops_cleanly(dev_env: dict[str, str], tmp_path: Path) -> None:
    data_dir = Path(dev_env["DATA_DIR"])
    credentials_file = data_dir / "dev-workspace.json"

    with dev_server(dev_env, tmp_path, "first") as first:
        first.wait_healthy()

        created = create_workspace(dev_env, "demo")
        assert set(created) == {"workspace_id", "api_token", "write_key"}
        assert graphql_workspace(first.base_url, created["api_token"])["name"] == "demo"

        dev_credentials = json.loads(credentials_file.read_text())
        assert set(dev_credentials) == {"workspace_id", "api_token", "write_key"}
        assert credentials_file.stat().st_mode & 0o777 == 0o600
        assert graphql_workspace(first.base_url, dev_credentials["api_token"])["name"] == "dev"
        first.wait_for_output(dev_credentials["api_token"])

        post_large_batch(first.base_url, dev_credentials["write_key"])

        subject = f"cdp dev e2e {time.time_ns()}"
        send_mail(int(dev_env["SMTP_PORT"]), subject)
        saved = wait_for_mail(data_dir / "mail", subject)
        assert saved.stat().st_size > 0
        assert not [p for p in (data_dir / "mail").iterdir() if p.name.startswith(".")]

        test_subject = send_test_email(first.base_url, dev_credentials["api_token"])
        test_mail = wait_for_mail(data_dir / "mail", test_subject).read_text(errors="replace")
        assert "X-CDP-Test: true" in test_mail
        assert "Content-Type: text/plain" in test_mail
        assert "Content-Type: text/html" in test_mail
        assert "Hi there" in test_mail

        stop_cleanly(first, signal.SIGINT)

    saved_credentials = credentials_file.read_bytes()
    with dev_server(dev_env, tmp_path, "second") as second:
        second.wait_healthy()

        assert credentials_file.read_bytes() == saved_credentials
        assert graphql_workspace(second.base_url, created["api_token"])["name"] == "demo"
        second.wait_for_output(dev_credentials["api_token"])

        stop_cleanly(second, signal.SIGTERM)


def test_cdp_dev_refuses_production(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        ENV="production",
        SECRET_KEY="x" * 40,
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing",
        DATA_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [*CLI, "dev"],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        (
            "error: cdp dev refuses ENV=production; "
            "run `cdp serve` and `cdp worker` against DATABASE_URL"
        )
    ]
    assert not (tmp_path / "pgdata").exists()
