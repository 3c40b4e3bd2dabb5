"""`cdp import profiles`: load profiles from a CSV export, batch by batch.

Every row is checked before anything is written, and a bad row is reported by
the physical line it starts on and skipped whole. Valid rows go to
`upsert_profiles` in batches, one transaction each, so an import that is
interrupted leaves whole batches behind and never part of a row.
"""

import asyncio
import codecs
import csv
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import embedded
from api.cli.errors import one_line_errors
from api.settings import get_settings
from cdp import identifiers
from cdp.profiles import MAX_UPSERT, UpsertItem, upsert_profiles
from domain.db import create_engine, session_factory
from domain.errors import DomainError, FieldError
from domain.uow import UnitOfWork
from domain.workspaces import get_workspaces

import_app = typer.Typer(help="Import data from files.", no_args_is_help=True)

# The contract names an email or a user id as a row's identifier; a phone
# number or an anonymous id may come along and is linked to the same profile.
PRIMARY_KINDS = ("email", "user_id")
IDENTIFIER_KINDS = (*PRIMARY_KINDS, "phone", "anonymous_id")
TRAIT_SOURCE = "import"
SNIFF_BYTES = 1024
SNIFF_DELIMITERS = ",;\t|"
SHOWN_ERRORS = 20
# Rejected rows wait for their batch so that the report stays in line order;
# this bounds the wait when valid rows are rare.
MAX_HELD_ERRORS = 10_000
PROGRESS_EVERY = 256
EXIT_FATAL = 1
EXIT_PARTIAL = 3  # 2 is click's usage error
EXIT_INTERRUPTED = 130
_WRITE_ERRORS = (SQLAlchemyError, DomainError, OSError)


class CannotImportError(ValueError):
    """The arguments or the file cannot be used, or the file not past a certain line."""


def _line(error: FieldError) -> int:
    """A row's errors carry its line number as their index."""
    return error.index or 0


def _row_text(error: FieldError) -> str:
    where = f"line {_line(error)}, column {error.field}" if error.field else f"line {_line(error)}"
    return f"{where}: {error.message}"


@dataclass(frozen=True)
class Header:
    names: tuple[str, ...]
    identifiers: tuple[tuple[int, str], ...]  # (position, identifier kind)
    traits: tuple[tuple[int, str], ...]  # (position, trait key)

    @property
    def primary_columns(self) -> list[str]:
        return [self.names[p] for p, kind in self.identifiers if kind in PRIMARY_KINDS]


@dataclass(frozen=True)
class Row:
    line: int
    item: UpsertItem
    columns: tuple[str, ...]  # the column each of the item's identifiers came from


ReportSink = Callable[[list[FieldError]], None]


@dataclass
class Outcome:
    imported: int = 0
    rejected: int = 0
    profiles: set[UUID] = field(default_factory=set)
    shown: list[FieldError] = field(default_factory=list)
    stopped: str | None = None
    interrupted: bool = False


def read_header(cells: list[str]) -> Header:
    # A BOM survives when --encoding is plain utf-8; it is never part of a name.
    names = tuple(cell.strip().lstrip("\ufeff").strip() for cell in cells)
    seen: set[str] = set()
    found_identifiers: list[tuple[int, str]] = []
    traits: list[tuple[int, str]] = []
    for position, name in enumerate(names):
        if not name:
            raise CannotImportError(f"header column {position + 1} has no name")
        kind = name.lower()
        key = kind if kind in IDENTIFIER_KINDS else name
        if key in seen:
            raise CannotImportError(f"column {name!r} appears twice in the header")
        seen.add(key)
        if kind in IDENTIFIER_KINDS:
            found_identifiers.append((position, kind))
        else:
            traits.append((position, name))
    if not any(kind in PRIMARY_KINDS for _, kind in found_identifiers):
        raise CannotImportError(
            f"the header has no email or user_id column (found: {', '.join(names)})"
        )
    return Header(names, tuple(found_identifiers), tuple(traits))


def parse_row(header: Header, line: int, cells: list[str]) -> Row | FieldError:
    """Turn one record into an upsert item, or say why the row cannot be imported."""
    if len(cells) != len(header.names):
        return FieldError(line, None, f"expected {len(header.names)} cells, found {len(cells)}")
    found: list[tuple[str, str]] = []
    columns: list[str] = []
    for position, kind in header.identifiers:
        value = cells[position].strip()
        if not value:
            continue
        try:
            identifier = identifiers.normalize(kind, value)
        except identifiers.IdentifierError as exc:
            return FieldError(line, header.names[position], str(exc))
        found.append((identifier.kind, identifier.value))
        columns.append(header.names[position])
    if not any(kind in PRIMARY_KINDS for kind, _ in found):
        return FieldError(line, None, f"no value in {' or '.join(header.primary_columns)}")
    traits = {key: cells[p].strip() for p, key in header.traits if cells[p].strip()}
    return Row(line, UpsertItem(tuple(found), traits or None), tuple(columns))


def records(text: TextIO, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank record with the physical line it starts on.

    After a syntax error the reader cannot know where the next record begins,
    so a malformed file stops here rather than guessing.
    """
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CannotImportError(
                f"line {start}: malformed CSV ({exc}); nothing from this line on was imported"
            ) from None
        except UnicodeDecodeError as exc:
            raise CannotImportError(
                f"near line {start}: the file is not valid {exc.encoding} "
                "(choose another with --encoding); nothing from this line on was imported"
            ) from None
        if any(cell.strip() for cell in cells):
            yield start, cells
        start = reader.line_num + 1


def sniff_delimiter(sample: bytes, encoding: str) -> str:
    decoded = sample.decode(encoding, errors="ignore")  # the sample may end inside a character
    complete = decoded[: decoded.rfind("\n") + 1] or decoded
    try:
        found = csv.Sniffer().sniff(complete, delimiters=SNIFF_DELIMITERS).delimiter
    except csv.Error:
        return ","
    first_line = complete.splitlines()[0] if complete else ""
    # The header must contain the separator; otherwise the guess came from the data.
    return found if found in first_line else ","


@dataclass
class Source:
    binary: io.BufferedReader
    text: TextIO
    size: int | None
    delimiter: str

    def position(self) -> int | None:
        return self.binary.tell() if self.size is not None else None


@contextmanager
def open_source(file: str, encoding: str, delimiter: str | None) -> Iterator[Source]:
    if file == "-":
        stdin = sys.stdin.buffer
        if not isinstance(stdin, io.BufferedReader):
            raise CannotImportError("standard input cannot be read as a file here")
        binary, size = stdin, None
    else:
        path = Path(file)
        if not path.is_file():
            raise CannotImportError(f"{file}: no such file")
        binary, size = path.open("rb"), path.stat().st_size
    try:
        chosen = delimiter or sniff_delimiter(binary.peek(SNIFF_BYTES)[:SNIFF_BYTES], encoding)
        text = io.TextIOWrapper(binary, encoding=encoding, newline="")
        try:
            yield Source(binary, text, size, chosen)
        finally:
            if file == "-":
                text.detach()
            else:
                text.close()
    finally:
        if file != "-":
            binary.close()


class Importer:
    """Collects checked rows and writes them a batch (one transaction) at a time."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        workspace_id: UUID,
        batch_size: int,
        report: ReportSink | None,
    ) -> None:
        self._sessions = sessions
        self._workspace_id = workspace_id
        self._batch_size = batch_size
        self._report = report
        self._rows: list[Row] = []
        self._held: list[FieldError] = []
        self.outcome = Outcome()
        self.done_through = 0  # the last line of the last batch written (or rejected)

    @property
    def rejected(self) -> int:
        return self.outcome.rejected + len(self._held)

    @property
    def full(self) -> bool:
        return len(self._rows) >= self._batch_size or len(self._held) >= MAX_HELD_ERRORS

    def add(self, checked: Row | FieldError) -> None:
        if isinstance(checked, Row):
            self._rows.append(checked)
        else:
            self._held.append(checked)

    async def flush(self) -> None:
        rows, self._rows = self._rows, []
        errors, self._held = self._held, []
        if rows:
            written, refused = await self._write(rows)
            self.outcome.imported += len(rows) - len(refused)
            self.outcome.profiles.update(written)
            errors.extend(refused)
        errors.sort(key=_line)
        if rows:
            self.done_through = rows[-1].line
        if errors:
            self.done_through = max(self.done_through, _line(errors[-1]))
        self.outcome.rejected += len(errors)
        room = SHOWN_ERRORS - len(self.outcome.shown)
        self.outcome.shown.extend(errors[: max(room, 0)])
        if self._report is not None:
            self._report(errors)

    async def _write(self, rows: list[Row]) -> tuple[list[UUID], list[FieldError]]:
        async with UnitOfWork(self._sessions, workspace_id=self._workspace_id) as uow:
            result = await upsert_profiles(uow, [r.item for r in rows], trait_source=TRAIT_SOURCE)
            refused = _refusals(rows, result.errors)
            if len(result.profile_ids) != len(rows) - len(refused):
                raise DomainError("the upsert returned an unexpected result; batch not written")
            await uow.commit()
        return result.profile_ids, list(refused.values())


def _refusals(rows: list[Row], errors: list[FieldError]) -> dict[int, FieldError]:
    """The upsert's item errors, one per row, mapped back to lines and columns."""
    refused: dict[int, FieldError] = {}
    for error in errors:
        if error.index is None or error.index in refused:
            continue
        row = rows[error.index]
        column = None
        if error.field and error.field.startswith("identifiers["):
            position = int(error.field.removeprefix("identifiers[").rstrip("]"))
            column = row.columns[position]
        refused[error.index] = FieldError(row.line, column, error.message)
    return refused


async def _check_workspace(sessions: async_sessionmaker[AsyncSession], workspace_id: UUID) -> None:
    async with UnitOfWork(sessions, workspace_id=workspace_id) as uow:
        found = await get_workspaces(uow, [workspace_id])
    if workspace_id not in found:
        raise CannotImportError(f"no workspace with id {workspace_id}")


@contextmanager
def _report_sink(path: Path | None) -> Iterator[ReportSink | None]:
    if path is None:
        yield None
        return
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("line", "column", "message"))
        yield lambda errors: writer.writerows((_line(e), e.field or "", e.message) for e in errors)


def _progress(size: int | None) -> tuple[Progress, TaskID]:
    console = Console(stderr=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("importing"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn(
            "{task.fields[read]} rows read, {task.fields[imported]} imported, "
            "{task.fields[rejected]} rejected"
        ),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task = progress.add_task("import", total=size, read=0, imported=0, rejected=0)
    return progress, task


async def _import_rows(
    source: Source, header: Header, rows: Iterator[tuple[int, list[str]]], importer: Importer
) -> str | None:
    """Import every row; return why the import stopped early, if it did."""
    progress, task = _progress(source.size)
    read = 0

    def show() -> None:
        progress.update(
            task,
            completed=source.position() or read,
            read=read,
            imported=importer.outcome.imported,
            rejected=importer.rejected,
        )

    stopped: str | None = None
    with progress:
        try:
            for line, cells in rows:
                importer.add(parse_row(header, line, cells))
                read += 1
                if importer.full:
                    await importer.flush()
                if read % PROGRESS_EVERY == 0:
                    show()
        except CannotImportError as exc:
            stopped = str(exc)
        # Rows read before a stop were whole and valid, so they are still written.
        await importer.flush()
        show()
    return stopped


@dataclass(frozen=True)
class Job:
    database_url: str
    role: str | None
    workspace_id: UUID
    batch_size: int
    report: Path | None


def _nothing_after(importer: Importer) -> str:
    if importer.done_through == 0:
        return "no rows were imported"
    return f"rows after line {importer.done_through} were not imported"


async def run_import(
    job: Job, source: Source, header: Header, rows: Iterator[tuple[int, list[str]]]
) -> Outcome:
    engine = create_engine(job.database_url, role=job.role, pool_size=2)
    try:
        sessions = session_factory(engine)
        await _check_workspace(sessions, job.workspace_id)
        with _report_sink(job.report) as sink:
            importer = Importer(sessions, job.workspace_id, job.batch_size, sink)
            try:
                importer.outcome.stopped = await _import_rows(source, header, rows, importer)
            except _WRITE_ERRORS as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                importer.outcome.stopped = f"{reason}; {_nothing_after(importer)}"
            except asyncio.CancelledError:
                # Ctrl-C cancels this task. Whole batches are already committed,
                # so say how far the import got rather than just dying.
                importer.outcome.stopped = f"interrupted; {_nothing_after(importer)}"
                importer.outcome.interrupted = True
        return importer.outcome
    finally:
        await engine.dispose()


def _workspace_id(value: str) -> UUID:
    try:
        return UUID(value.strip())
    except ValueError:
        raise CannotImportError(
            f"--workspace must be a workspace id (a UUID), not {value!r}"
        ) from None


def _delimiter(value: str | None) -> str | None:
    if value is None:
        return None
    named = {"tab": "\t", "\\t": "\t"}
    chosen = named.get(value.lower(), value)
    if len(chosen) != 1 or chosen in '"\r\n':
        raise CannotImportError("--delimiter must be a single character (or 'tab')")
    return chosen


def _encoding(value: str) -> str:
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise CannotImportError(f"--encoding: unknown encoding {value!r}") from None


def _finish(outcome: Outcome, report: Path | None) -> None:
    for error in outcome.shown:
        print(_row_text(error), file=sys.stderr)
    more = outcome.rejected - len(outcome.shown)
    if more > 0:
        where = f"see {report}" if report else "use --report PATH to list them all"
        print(f"... and {more} more rejected rows ({where})", file=sys.stderr)
    print(
        f"imported {outcome.imported} rows ({len(outcome.profiles)} profiles), "
        f"{outcome.rejected} rows rejected"
    )
    if outcome.stopped:
        print(f"error: {outcome.stopped}", file=sys.stderr)
        raise typer.Exit(code=EXIT_INTERRUPTED if outcome.interrupted else EXIT_FATAL)
    if outcome.rejected:
        raise typer.Exit(code=EXIT_PARTIAL)


@import_app.command("profiles")
@one_line_errors
def import_profiles(
    file: str = typer.Argument(
        ..., metavar="FILE", help="The CSV file to import, or - for standard input."
    ),
    *,
    workspace: str = typer.Option(..., "--workspace", help="The id of the workspace to fill."),
    batch_size: int = typer.Option(
        MAX_UPSERT, "--batch-size", help=f"Rows per transaction, 1 to {MAX_UPSERT}."
    ),
    delimiter: str | None = typer.Option(
        None, "--delimiter", help="Cell separator (default: detected, else ',')."
    ),
    encoding: str = typer.Option(
        "utf-8-sig", "--encoding", help="Text encoding (the default skips a UTF-8 BOM)."
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Write every rejected row here as CSV: line, column, message."
    ),
) -> None:
    """Import profiles from a CSV file with a header row.

    An email or user_id column identifies each row; phone and anonymous_id
    columns are identifiers too, and every other column is a text trait.
    Exits 0 when every row was imported, 2 when some rows were rejected, and
    1 when the file or the arguments could not be used.
    """
    workspace_id = _workspace_id(workspace)
    if not 1 <= batch_size <= MAX_UPSERT:
        raise CannotImportError(f"--batch-size must be between 1 and {MAX_UPSERT}")
    chosen_encoding = _encoding(encoding)
    chosen_delimiter = _delimiter(delimiter)
    with open_source(file, chosen_encoding, chosen_delimiter) as source:
        rows = records(source.text, source.delimiter)
        first = next(rows, None)
        if first is None:
            raise CannotImportError("the file is empty; a header row is required")
        header = read_header(first[1])
        settings = get_settings()
        job = Job(
            embedded.database_url(settings),
            settings.app_db_role or None,
            workspace_id,
            batch_size,
            report,
        )
        outcome = asyncio.run(run_import(job, source, header, rows))
    _finish(outcome, report)


__all__ = ["import_app"]
