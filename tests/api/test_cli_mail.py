"""`cdp mail classify` as an operator runs it: no database, one JSON object or a summary."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.delivery.deliverability.test_reports import DSN_WITH_HEADERS, ENTRIES, FIXTURES
from tests.support.cli import cli_env

ROOT = Path(__file__).resolve().parents[2]
# The command never connects: a database nobody listens on proves it.
NO_DATABASE = "postgresql://nobody@127.0.0.1:1/none"


def _mail(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from api.cli.main import run; run()", "mail", *args],
        cwd=ROOT, env=cli_env(NO_DATABASE, tmp_path), capture_output=True, timeout=120,
        check=False, input=stdin, text=True,
    )  # fmt: skip


def _fixture(name: str) -> tuple[Path, dict[str, object]]:
    entry = next((e for e in ENTRIES if e["file"] == name), None)
    if entry is None:
        pytest.skip(f"no mail fixtures in {FIXTURES}")
    return FIXTURES / name, entry


def test_classify_json_prints_the_manifest_fields_of_a_fixture(tmp_path):
    path, entry = _fixture("dsn-hard/postfix-two-recipients-5.2.1-5.1.1.eml")
    result = _mail(tmp_path, "classify", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        k: entry[k] for k in ("kind", "class", "recipients", "status")
    }
    assert len(result.stdout.splitlines()) == 1


def test_classify_prints_a_summary_for_a_person(tmp_path):
    message = tmp_path / "bounce.eml"
    message.write_bytes(DSN_WITH_HEADERS)
    result = _mail(tmp_path, "classify", str(message))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "kind: dsn",
        "class: hard",
        "recipients: ann@example.org, bob@example.org",
        "status: 5.1.1",
        "original message-id: <0b8e1f3c-5d4a-4c2e-9f10-2a6b7c8d9e01@shop.example>",
    ]


def test_classify_reads_standard_input(tmp_path):
    result = _mail(tmp_path, "classify", "-", "--json", stdin=DSN_WITH_HEADERS.decode())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["recipients"] == ["ann@example.org", "bob@example.org"]


@pytest.mark.parametrize("name", ["missing.eml", "."])
def test_an_unreadable_file_is_one_line_and_no_traceback(tmp_path, name):
    target = tmp_path / name
    result = _mail(tmp_path, "classify", str(target), "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: cannot read {target}")
