"""`cdp templates seed` as an operator runs it, against a real database."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

from delivery.templates import repository
from delivery.templates.starter_templates import STARTERS
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow
from tests.support.cli import cli_env

ROOT = Path(__file__).resolve().parents[2]


def _seed(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from api.cli.main import run; run()", "templates", "seed", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_seed_loads_every_starter_once_without_warnings(database_url, workspace, tmp_path):
    env = cli_env(database_url, tmp_path)
    ws = str(workspace.workspace.id)
    first = _seed(env, "--workspace", ws, "--json")
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    assert [r["key"] for r in rows] == [s.key for s in STARTERS]
    assert all(r["created"] and r["warnings"] == [] for r in rows), rows

    again = _seed(env, "--workspace", ws, "--json")
    assert again.returncode == 0, again.stderr
    assert not any(json.loads(line)["created"] for line in again.stdout.splitlines())

    async def names(uow: UnitOfWork) -> list[str]:
        return sorted(row.name for row in await repository.page(uow, after=None, limit=100))

    assert in_uow(database_url, workspace.workspace.id, names) == sorted(s.name for s in STARTERS)


def test_seed_names_a_bad_or_unknown_workspace_in_one_line(database_url, tmp_path):
    env = cli_env(database_url, tmp_path)
    for value, words in (("nope", "must be a UUID"), (str(uuid.uuid4()), "no workspace")):
        result = _seed(env, "--workspace", value)
        assert result.returncode == 1
        assert words in result.stderr
        assert "Traceback" not in result.stderr
