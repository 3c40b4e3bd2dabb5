"""`cdp segments ...` as an operator or a script runs it, against a real database."""

import base64
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from cdp.segments import services
from cdp.segments.repository import SegmentRow
from consent import audit
from consent.keys import Keys
from tests.cdp.segments.support import in_uow
from tests.support import factories
from tests.support.cli import cli_env
from tests.support.database import SECRET

ROOT = Path(__file__).resolve().parents[2]
PRO = {"trait": "plan", "op": "eq", "value": "pro"}
FREE = {"trait": "plan", "op": "eq", "value": "free"}
ACTOR = audit.Actor("cli", "test")


def cdp(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from api.cli.main import run; run()", "segments", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return cli_env(database_url, tmp_path, SECRET_KEY=SECRET)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def create(
    database_url: str, ws: UUID, name: str, definition: Any, description: str | None = None
) -> SegmentRow:
    data = services.SegmentInput(name, description, definition)
    return in_uow(database_url, ws, lambda uow: services.create(uow, ACTOR, data))


def recompute(database_url: str, ws: UUID, segment_id: UUID) -> None:
    in_uow(database_url, ws, lambda uow: services.recompute(uow, Keys(SECRET), segment_id))


def seed(database_url: str, ws: UUID, n: int, plan: str) -> list[UUID]:
    with factories.seeding(database_url) as db:
        return factories.profiles(db, ws, n, traits={"plan": plan})


def profile_gid(profile_id: UUID) -> str:
    return base64.b64encode(f"Profile:{profile_id}".encode()).decode()


def test_list_in_both_formats(database_url, workspace, env):
    ws = workspace.workspace.id
    pros = seed(database_url, ws, 2, "pro")
    seed(database_url, ws, 1, "free")
    ready = create(database_url, ws, "Pro plan", PRO)
    recompute(database_url, ws, ready.id)
    pending = create(database_url, ws, "Free [bold]plan[/bold]", FREE)

    listed = json.loads(ok(cdp(env, "list", "--workspace", str(ws), "--json")))

    by_id = {item["id"]: item for item in listed}
    assert set(by_id) == {services.global_id(ready.id), services.global_id(pending.id)}
    assert {k: v for k, v in by_id[services.global_id(ready.id)].items() if k != "updated_at"} == {
        "id": services.global_id(ready.id),
        "name": "Pro plan",
        "state": "READY",
        "size": len(pros),
    }
    assert by_id[services.global_id(pending.id)]["state"] == "COMPUTING"
    assert by_id[services.global_id(pending.id)]["size"] == 0
    assert by_id[services.global_id(ready.id)]["updated_at"] == ready.updated_at.isoformat()

    table = ok(cdp(env, "list", "--workspace", str(ws)))
    rows = {line for line in table.splitlines() if services.global_id(ready.id) in line}
    assert len(rows) == 1
    [row] = rows
    assert "Pro plan" in row
    assert "READY" in row
    assert services.global_id(pending.id) in table
    # A name is shown as written, not read as rich markup.
    assert "Free [bold]plan[/bold]" in table


def test_list_of_an_empty_workspace(workspace, env):
    assert json.loads(ok(cdp(env, "list", "-w", str(workspace.workspace.id), "--json"))) == []


def test_show_in_both_formats_by_global_id_or_uuid(database_url, workspace, env):
    ws = workspace.workspace.id
    seed(database_url, ws, 3, "pro")
    row = create(database_url, ws, "Pro plan", {"all": [PRO]}, description="Paying customers")
    recompute(database_url, ws, row.id)

    by_gid = json.loads(
        ok(cdp(env, "show", services.global_id(row.id), "--workspace", str(ws), "--json"))
    )
    by_uuid = json.loads(ok(cdp(env, "show", str(row.id), "--workspace", str(ws), "--json")))

    assert by_gid == by_uuid
    assert by_gid["id"] == services.global_id(row.id)
    assert by_gid["name"] == "Pro plan"
    assert by_gid["description"] == "Paying customers"
    assert (by_gid["state"], by_gid["size"], by_gid["version"]) == ("READY", 3, 1)
    assert by_gid["computed_at"] is not None
    assert by_gid["definition"] == row.definition

    text = ok(cdp(env, "show", str(row.id), "--workspace", str(ws)))
    head, _, definition = text.partition("definition:\n")
    assert json.loads(definition) == row.definition
    assert len(definition.splitlines()) > 1  # pretty, not one line
    fields = dict(line.split(": ", 1) for line in head.splitlines())
    assert fields["state"] == "READY"
    assert fields["size"] == "3"
    assert fields["description"] == "Paying customers"


def test_members_page_through_in_both_formats(database_url, workspace, env):
    ws = workspace.workspace.id
    # More than one page of 1,000.
    pros = seed(database_url, ws, 1003, "pro")
    seed(database_url, ws, 2, "free")
    row = create(database_url, ws, "Pro plan", PRO)
    recompute(database_url, ws, row.id)
    gid = services.global_id(row.id)

    lines = ok(cdp(env, "members", gid, "--workspace", str(ws), "--json")).splitlines()
    found = [json.loads(line) for line in lines]
    assert [UUID(item["profile_id"]) for item in found] == sorted(pros)
    assert all(item["id"] == profile_gid(UUID(item["profile_id"])) for item in found)

    limited = ok(cdp(env, "members", gid, "--workspace", str(ws), "--limit", "1001"))
    pairs = [line.split("\t") for line in limited.splitlines()]
    assert [UUID(raw) for _, raw in pairs] == sorted(pros)[:1001]
    assert all(g == profile_gid(UUID(raw)) for g, raw in pairs)


def test_recompute_fills_the_membership(database_url, workspace, env):
    ws = workspace.workspace.id
    pros = seed(database_url, ws, 2, "pro")
    seed(database_url, ws, 1, "free")
    row = create(database_url, ws, "Pro plan", PRO)
    gid = services.global_id(row.id)
    assert ok(cdp(env, "members", gid, "--workspace", str(ws))) == ""

    first = ok(cdp(env, "recompute", gid, "--workspace", str(ws)))

    assert first.splitlines() == ["entered: 2", "exited: 0", "size: 2"]
    members = ok(cdp(env, "members", gid, "--workspace", str(ws), "--json"))
    assert [UUID(json.loads(line)["profile_id"]) for line in members.splitlines()] == sorted(pros)
    shown = json.loads(ok(cdp(env, "show", gid, "--workspace", str(ws), "--json")))
    assert (shown["state"], shown["size"]) == ("READY", 2)
    again = json.loads(ok(cdp(env, "recompute", gid, "--workspace", str(ws), "--json")))
    assert again == {"entered": 0, "exited": 0, "size": 2}


def test_recompute_shows_progress_on_a_terminal(database_url, workspace, env):
    ws = workspace.workspace.id
    seed(database_url, ws, 1, "pro")
    row = create(database_url, ws, "Pro plan", PRO)

    result = cdp({**env, "TTY_COMPATIBLE": "1"}, "recompute", str(row.id), "-w", str(ws))

    assert ok(result).splitlines() == ["entered: 1", "exited: 0", "size: 1"]
    assert 'computing "Pro plan"' in result.stderr
    assert "0:00:" in result.stderr  # the elapsed time


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("command", ["show", "members", "recompute"])
def test_an_unknown_segment_is_one_line(database_url, workspace, env, command):
    missing = uuid.uuid4()
    line = one_line_error(
        cdp(env, command, str(missing), "--workspace", str(workspace.workspace.id))
    )
    assert str(missing) in line
    assert "no segment" in line


def test_a_segment_of_another_workspace_is_unknown(database_url, workspace, other_workspace, env):
    row = create(database_url, workspace.workspace.id, "Pro plan", PRO)
    line = one_line_error(
        cdp(env, "show", str(row.id), "--workspace", str(other_workspace.workspace.id))
    )
    assert "no segment" in line


@pytest.mark.parametrize(
    "bad_id",
    ["nope", "12345", base64.b64encode(f"Profile:{uuid.UUID(int=1)}".encode()).decode()],
)
@pytest.mark.parametrize("command", ["show", "members", "recompute"])
def test_a_malformed_segment_id_is_one_line(workspace, env, command, bad_id):
    line = one_line_error(cdp(env, command, bad_id, "--workspace", str(workspace.workspace.id)))
    assert "not a segment id" in line
    assert repr(bad_id) in line


@pytest.mark.parametrize("command", [("list",), ("show", str(uuid.UUID(int=1)))])
def test_an_unknown_workspace_is_one_line(env, command):
    missing = uuid.uuid4()
    line = one_line_error(cdp(env, *command, "--workspace", str(missing)))
    assert line == f"error: no workspace with id {missing}"


def test_a_malformed_workspace_or_limit_is_one_line(database_url, workspace, env):
    row = create(database_url, workspace.workspace.id, "Pro plan", PRO)
    assert "--workspace" in one_line_error(cdp(env, "list", "--workspace", "acme"))
    line = one_line_error(
        cdp(env, "members", str(row.id), "--workspace", str(workspace.workspace.id), "--limit", "0")
    )
    assert "--limit" in line
