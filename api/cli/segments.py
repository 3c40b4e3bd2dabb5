"""`cdp segments ...`: read segments and their members, and evaluate one in full now.

Like the other commands, these act as the runtime role in one workspace, so
row-level security holds. Reads are plain reads; `recompute` does what the
worker's job does, in this process, and commits.
"""

import asyncio
import base64
import json
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from api.cli.errors import one_line_errors
from api.cli.units import workspace_unit
from api.settings import get_settings
from cdp.segments import repository, services
from cdp.segments.repository import MembershipChange, SegmentRow
from consent.keys import Keys
from domain.errors import NotFoundError, ValidationError
from domain.uow import UnitOfWork

T = TypeVar("T")

segments_app = typer.Typer(
    help="Segments: list them, show one, read its members, evaluate it now.",
    no_args_is_help=True,
)
WORKSPACE = typer.Option(..., "--workspace", "-w", help="The workspace id.")
SEGMENT = typer.Argument(..., metavar="ID", help="The segment's global id or its UUID.")
LIST_PAGE = 500
MEMBER_PAGE = 1000
PROFILE_TYPE = "Profile"
SUMMARY_KEYS = ("id", "name", "state", "size", "updated_at")
# A global id is 60 characters; a table narrower than that would cut ids in two.
PIPE_TABLE_WIDTH = 160


def profile_global_id(profile_id: UUID) -> str:
    """The profile's id as the API shows it (a Relay global id)."""
    return base64.b64encode(f"{PROFILE_TYPE}:{profile_id}".encode()).decode()


def state_of(row: SegmentRow) -> str:
    return "COMPUTING" if row.computed_version < row.version else "READY"


def summary(row: SegmentRow, size: int) -> dict[str, Any]:
    return {
        "id": services.global_id(row.id),
        "name": row.name,
        "state": state_of(row),
        "size": size,
        "updated_at": row.updated_at.isoformat(),
    }


def detail(row: SegmentRow, size: int) -> dict[str, Any]:
    return {
        **summary(row, size),
        "description": row.description,
        "version": row.version,
        "computed_at": row.computed_at.isoformat() if row.computed_at else None,
        "definition": row.definition,
    }


def _segment_id(value: str) -> UUID:
    found = services.segment_id_of(value.strip())
    if found is None:
        raise ValidationError(f"not a segment id (a global id or a UUID): {value!r}")
    return found


async def _get(uow: UnitOfWork, segment_id: UUID) -> SegmentRow:
    row = await repository.get(uow, segment_id)
    if row is None:
        raise NotFoundError(f"no segment with id {services.global_id(segment_id)} ({segment_id})")
    return row


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(make())


def _stdout_table(table: Table) -> None:
    console = Console()
    if not console.is_terminal:
        console = Console(width=PIPE_TABLE_WIDTH)
    console.print(table)


@contextmanager
def _quiet_broken_pipe() -> Iterator[None]:
    """`cdp segments members ... | head` stops reading early; that is not an error."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(code=1) from None


@segments_app.command("list")
@one_line_errors
def list_segments(
    workspace: str = WORKSPACE,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array."),
) -> None:
    """Every segment of the workspace, with its state and size."""

    async def go() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        async with workspace_unit(workspace) as uow:
            after = None
            while rows := await repository.page(uow, after=after, limit=LIST_PAGE):
                sizes = await repository.size(uow, [row.id for row in rows])
                found.extend(summary(row, sizes[row.id]) for row in rows)
                after = rows[-1].id
        return found

    listed = _run(go)
    if as_json:
        print(json.dumps(listed))
        return
    table = Table(*SUMMARY_KEYS)
    table.columns[0].no_wrap = True
    for item in listed:
        # Text, not str: a name is the user's and is not rich markup.
        table.add_row(*(Text(str(item[key])) for key in SUMMARY_KEYS))
    _stdout_table(table)


@segments_app.command("show")
@one_line_errors
def show(
    segment: str = SEGMENT,
    workspace: str = WORKSPACE,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """One segment: its state, size, version and definition."""

    async def go() -> dict[str, Any]:
        segment_id = _segment_id(segment)
        async with workspace_unit(workspace) as uow:
            row = await _get(uow, segment_id)
            sizes = await repository.size(uow, [segment_id])
        return detail(row, sizes[segment_id])

    shown = _run(go)
    if as_json:
        print(json.dumps(shown))
        return
    definition = shown.pop("definition")
    for key, value in shown.items():
        print(f"{key}: {value if value is not None else '-'}")
    print("definition:")
    print(json.dumps(definition, indent=2, ensure_ascii=False))


def _member_line(profile_id: UUID, *, as_json: bool) -> str:
    gid = profile_global_id(profile_id)
    if as_json:
        return json.dumps({"id": gid, "profile_id": str(profile_id)})
    return f"{gid}\t{profile_id}"


@segments_app.command("members")
@one_line_errors
def members(
    segment: str = SEGMENT,
    workspace: str = WORKSPACE,
    limit: int | None = typer.Option(None, "--limit", help="At most this many (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line."),
) -> None:
    """The member profiles, by id, a page at a time: the global id and the UUID."""
    if limit is not None and limit < 1:
        raise ValidationError(f"--limit must be at least 1, not {limit}")

    async def go() -> None:
        segment_id = _segment_id(segment)
        async with workspace_unit(workspace) as uow:
            await _get(uow, segment_id)
            left = limit
            after = None
            while left is None or left > 0:
                wanted = MEMBER_PAGE if left is None else min(left, MEMBER_PAGE)
                page = await repository.member_page(uow, segment_id, after=after, limit=wanted)
                if page:
                    lines = (_member_line(p, as_json=as_json) for p in page)
                    sys.stdout.write("\n".join(lines) + "\n")
                if len(page) < wanted:
                    return
                after = page[-1]
                left = None if left is None else left - len(page)

    with _quiet_broken_pipe():
        _run(go)


@contextmanager
def _computing(name: str) -> Iterator[None]:
    """A spinner and the elapsed time on stderr while the evaluation runs.

    A full evaluation is one SQL statement, so there is no row count to follow:
    the bar has no total (rich draws it as a pulse) and only the time moves.
    """
    console = Console(stderr=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("computing {task.description}", markup=False),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=False,
    )
    with progress:
        task = progress.add_task(name, total=None)
        yield
        progress.update(task, total=1, completed=1)


@segments_app.command("recompute")
@one_line_errors
def recompute(
    segment: str = SEGMENT,
    workspace: str = WORKSPACE,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Evaluate the segment in full now, in this process, and print who entered and left."""

    async def go() -> tuple[MembershipChange, int]:
        segment_id = _segment_id(segment)
        async with workspace_unit(workspace) as uow:
            row = await _get(uow, segment_id)
            with _computing(f'"{row.name}"'):
                change = await services.recompute(uow, Keys(get_settings().secret()), segment_id)
            if change is None:
                raise NotFoundError(f"segment {services.global_id(segment_id)} was just deleted")
            sizes = await repository.size(uow, [segment_id])
            await uow.commit()
        return change, sizes[segment_id]

    change, size = _run(go)
    result = {"entered": change.entered, "exited": change.exited, "size": size}
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


__all__ = ["segments_app"]
