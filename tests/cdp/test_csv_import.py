"""`cdp import profiles` end to end: a real subprocess on a real database."""

import csv
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.conftest import gql
from tests.support.database import APP_ROLE

ROOT = Path(__file__).resolve().parents[2]

PROFILE = """query($kind: String!, $value: String!) {
  profile(identifier: {kind: $kind, value: $value}) { traits traitSources { key source } } }"""


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if k not in {"BROKER_URL", "ENV"}}
    values.update(
        {"DATABASE_URL": database_url, "APP_DB_ROLE": APP_ROLE, "DATA_DIR": str(tmp_path / "d")}
    )
    return values


def cdp_import(
    path: str, workspace_id: str, *extra: str, env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    args = ["import", "profiles", path, "--workspace", workspace_id, *extra]
    result = subprocess.run(
        [sys.executable, "-c", "from api.cli.main import run; run()", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=300,
        check=False,
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def profile(client, token, kind, value):
    body = gql(client, PROFILE, {"kind": kind, "value": value}, token=token)
    assert "errors" not in body, body
    return body["data"]["profile"]


def stored(database_url, workspace_id, sql):
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT set_config('cdp.workspace_id', %s, false)", (str(workspace_id),))
        row = conn.execute(sql, (workspace_id,)).fetchone()
    assert row is not None
    return row[0]


def identity_count(database_url, workspace_id):
    return stored(
        database_url, workspace_id, "SELECT count(*) FROM identities WHERE workspace_id = %s"
    )


def stderr_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip()]


BAD_ROWS = (
    "email,user_id,first_name,notes,plan\n"  # line 1
    'ann@example.com,u1,Ann,"line one\n'  # line 2: a note over three lines
    "line two\n"
    'line three",pro\n'
    "not-an-email,u2,Bob,,free\n"  # line 5: a bad email
    ",,Carl,,free\n"  # line 6: no identifier
    "\n"  # line 7: blank, skipped
    "dee@example.com,,Dee,,\n"  # line 8
    "eve@example.com,u5,Eve,,free,extra\n"  # line 9: one cell too many
)


def test_bad_rows_are_reported_by_physical_line_and_skipped(
    client, workspace, database_url, env, tmp_path
):
    source = tmp_path / "crm.csv"
    source.write_text(BAD_ROWS)
    report = tmp_path / "errors.csv"
    result = cdp_import(str(source), str(workspace.workspace.id), "--report", str(report), env=env)

    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == "imported 2 rows (2 profiles), 3 rows rejected"
    assert "Traceback" not in result.stderr
    assert stderr_lines(result) == [
        "line 5, column email: not an email address",
        "line 6: no value in email or user_id",
        "line 9: expected 5 cells, found 6",
    ]
    with report.open(newline="") as f:
        assert list(csv.reader(f)) == [
            ["line", "column", "message"],
            ["5", "email", "not an email address"],
            ["6", "", "no value in email or user_id"],
            ["9", "", "expected 5 cells, found 6"],
        ]

    token = workspace.api_token
    ann = profile(client, token, "email", "ann@example.com")
    assert ann["traits"] == {
        "first_name": "Ann",
        "notes": "line one\nline two\nline three",
        "plan": "pro",
    }
    assert {s["source"] for s in ann["traitSources"]} == {"import"}
    assert profile(client, token, "user_id", "u1") == ann
    # An empty cell leaves the trait unset rather than setting it to "".
    assert profile(client, token, "email", "dee@example.com")["traits"] == {"first_name": "Dee"}
    # Nothing of a rejected row is written, not even its valid identifier.
    assert profile(client, token, "user_id", "u2") is None
    assert profile(client, token, "user_id", "u5") is None
    assert profile(client, token, "email", "eve@example.com") is None
    assert identity_count(database_url, workspace.workspace.id) == 3


def test_a_header_without_an_identifier_column_imports_nothing(
    workspace, database_url, env, tmp_path
):
    source = tmp_path / "no-id.csv"
    source.write_text("name,plan\nAnn,pro\n")
    result = cdp_import(str(source), str(workspace.workspace.id), env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    lines = stderr_lines(result)
    assert len(lines) == 1, lines
    assert "email or user_id" in lines[0]
    assert identity_count(database_url, workspace.workspace.id) == 0


@pytest.mark.parametrize("workspace_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_an_unknown_workspace_is_one_line(workspace, workspace_id, env, tmp_path):
    source = tmp_path / "ok.csv"
    source.write_text("email\nann@example.com\n")
    result = cdp_import(str(source), workspace_id, env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    lines = stderr_lines(result)
    assert len(lines) == 1, lines
    assert "workspace" in lines[0]


def test_a_large_file_is_written_in_whole_batches(workspace, database_url, env, tmp_path):
    source = tmp_path / "big.csv"
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user_id", "email", "tier"])
        writer.writerows((f"user-{i}", f"person{i}@example.com", "gold") for i in range(2500))
    result = cdp_import(str(source), str(workspace.workspace.id), "--batch-size", "1000", env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported 2500 rows (2500 profiles), 0 rows rejected"
    workspace_id = workspace.workspace.id
    assert identity_count(database_url, workspace_id) == 5000
    # Each batch is its own transaction: 2,500 rows in batches of 1,000 make three.
    transactions = stored(
        database_url,
        workspace_id,
        "SELECT count(DISTINCT xmin::text) FROM profiles WHERE workspace_id = %s",
    )
    assert transactions == 3


def test_stdin_with_a_bom_and_semicolons(client, workspace, env):
    data = "\ufeffEmail;City\nann@example.com;Lyon\nbob@example.com;Nice\n".encode()
    result = cdp_import("-", str(workspace.workspace.id), env=env, stdin=data)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported 2 rows (2 profiles), 0 rows rejected"
    found = profile(client, workspace.api_token, "email", "bob@example.com")
    assert found["traits"] == {"City": "Nice"}


def test_an_undecodable_file_stops_but_keeps_whole_rows(workspace, database_url, env, tmp_path):
    source = tmp_path / "latin1.csv"
    lines = ["email,name"] + [f"person{i}@example.com,P{i}" for i in range(3000)]
    source.write_bytes(("\n".join(lines) + "\n").encode() + b"zoe@example.com,Zo\xe9\n")
    result = cdp_import(str(source), str(workspace.workspace.id), "--batch-size", "1000", env=env)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "--encoding" in stderr_lines(result)[-1]
    imported = int(result.stdout.split()[1])
    assert 1000 <= imported < 3000
    assert identity_count(database_url, workspace.workspace.id) == imported


def test_a_row_the_upsert_refuses_is_reported_by_line(client, workspace, env, tmp_path):
    source = tmp_path / "notes.csv"
    source.write_text(
        "email,notes\nh1@example.com,short\nh2@example.com," + "x" * 40_000 + "\n"
        "h3@example.com,ok\n"
    )
    result = cdp_import(str(source), str(workspace.workspace.id), env=env)

    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == "imported 2 rows (2 profiles), 1 rows rejected"
    assert stderr_lines(result) == ["line 3: traits must be at most 32 KB"]
    assert profile(client, workspace.api_token, "email", "h2@example.com") is None
    assert profile(client, workspace.api_token, "email", "h3@example.com")["traits"] == {
        "notes": "ok"
    }
