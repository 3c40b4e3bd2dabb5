"""The `cdp` command line as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.support.cli import cli_env

ROOT = Path(__file__).resolve().parents[2]


def cdp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from api.cli.main import run; run()", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return cli_env(database_url, tmp_path)


def test_workspace_create_json(database_url, tmp_path, client):
    result = cdp("workspace", "create", "demo", "--json", env=_env(database_url, tmp_path))
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) == {"workspace_id", "api_token", "write_key"}
    body = client.post(
        "/graphql",
        json={"query": "{ workspace { id name } }"},
        headers={"Authorization": f"Bearer {payload['api_token']}"},
    ).json()
    assert body["data"]["workspace"]["name"] == "demo"
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT name FROM workspaces WHERE id = %s", (payload["workspace_id"],)
        ).fetchone()
    assert found == ("demo",)


def test_bad_arguments_exit_nonzero_with_one_line(database_url, tmp_path):
    env = _env(database_url, tmp_path)
    for args in (("workspace", "create", "   ", "--json"), ("serve", "--port", "0"), ("nosuch",)):
        result = cdp(*args, env=env)
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip(), args


def test_bad_setting_is_one_line(tmp_path):
    env = {**os.environ, "ENV": "production", "DATA_DIR": str(tmp_path)}
    env.pop("SECRET_KEY", None)
    result = cdp("migrate", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "SECRET_KEY" in lines[0]


def test_unreachable_database_is_one_line(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x",
        "DATA_DIR": str(tmp_path),
    }
    result = cdp("workspace", "create", "demo", "--json", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
