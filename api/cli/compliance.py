"""`cdp dsr ...` for data-subject requests and `cdp compliance ropa` for Art. 30 records.

The CLI acts as the runtime role, like the API, so row-level security holds;
its actions are audited as the operating-system user who ran them.
"""

import asyncio
import getpass
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from api import contexts
from api.cli.errors import one_line_errors
from api.cli.units import uuid_option, workspace_unit
from api.settings import get_settings
from consent import audit
from consent.dsr import model as dsr_model
from consent.dsr import services as dsr
from consent.keys import Keys
from domain.errors import ValidationError

T = TypeVar("T")

dsr_app = typer.Typer(help="Data-subject requests (GDPR Art. 15-21).", no_args_is_help=True)
compliance_app = typer.Typer(help="Compliance records.", no_args_is_help=True)
WORKSPACE = typer.Option(..., "--workspace", "-w", help="The workspace id.")


def _actor() -> audit.Actor:
    return audit.Actor("cli", getpass.getuser())


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(make())


def _as_dict(request: dsr_model.DataSubjectRequest) -> dict[str, Any]:
    return {
        "id": str(request.id),
        "type": request.type.value,
        "status": request.status.value,
        "identifier_kind": request.identifier_kind,
        "received_at": request.received_at.isoformat(),
        "due_at": request.due_at.isoformat(),
        "completed_at": request.completed_at.isoformat() if request.completed_at else None,
        "extended_months": request.extended_months,
        "extension_reason": request.extension_reason,
        "rejection_reason": request.rejection_reason,
        "requested_by": request.actor,
    }


def _keys() -> Keys:
    return Keys(get_settings().secret())


def _print(request: dsr_model.DataSubjectRequest, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_as_dict(request)))
        return
    for key, value in _as_dict(request).items():
        print(f"{key}: {value if value is not None else '-'}")


@dsr_app.command("create")
@one_line_errors
def create(  # noqa: PLR0917 - typer maps each option to a parameter
    request_type: str = typer.Option(..., "--type", help="ACCESS, PORTABILITY, ERASURE, ..."),
    kind: str = typer.Option("email", "--kind", help="The identifier's kind."),
    value: str = typer.Option(..., "--value", help="The identifier, e.g. the email address."),
    note: str | None = typer.Option(None, help="A note for the file (no personal data)."),
    corrections: str | None = typer.Option(
        None, help='RECTIFICATION: a JSON object of traits, e.g. {"last_name": "Doe"}.'
    ),
    workspace: str = WORKSPACE,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """File a verified request; a worker (or `cdp dsr process`) carries it out."""
    try:
        wanted = dsr_model.RequestType(request_type.strip().upper())
    except ValueError:
        raise ValidationError(
            f"--type must be one of {', '.join(dsr_model.RequestType)}, not {request_type!r}"
        ) from None
    parsed = None
    if corrections is not None:
        try:
            parsed = orjson.loads(corrections)
        except orjson.JSONDecodeError:
            raise ValidationError("--corrections must be a JSON object") from None

    async def go() -> dsr_model.DataSubjectRequest:
        async with workspace_unit(workspace) as uow:
            request = await dsr.create(
                uow,
                _keys(),
                _actor(),
                kind=kind,
                value=value,
                request_type=wanted,
                note=note,
                corrections=parsed,
            )
            await uow.commit()
            return request

    _print(_run(go), as_json=as_json)


@dsr_app.command("list")
@one_line_errors
def list_requests(
    workspace: str = WORKSPACE,
    status: str | None = typer.Option(None, help="RECEIVED, IN_PROGRESS, COMPLETED or REJECTED."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line."),
) -> None:
    """Requests oldest first, with their due dates."""
    try:
        wanted = dsr_model.RequestStatus(status.strip().upper()) if status else None
    except ValueError:
        raise ValidationError(f"--status is not a request status: {status!r}") from None

    async def go() -> list[dsr_model.DataSubjectRequest]:
        found: list[dsr_model.DataSubjectRequest] = []
        async with workspace_unit(workspace) as uow:
            after = None
            while page := await dsr.list_requests(uow, limit=500, after=after, status=wanted):
                found.extend(page)
                after = page[-1].id
        return found

    requests = _run(go)
    if as_json:
        for request in requests:
            print(json.dumps(_as_dict(request)))
        return
    table = Table("id", "type", "status", "received", "due")
    for r in requests:
        table.add_row(
            str(r.id),
            r.type.value,
            r.status.value,
            f"{r.received_at:%Y-%m-%d}",
            f"{r.due_at:%Y-%m-%d}",
        )
    Console().print(table)


@dsr_app.command("show")
@one_line_errors
def show(
    request_id: str = typer.Argument(..., help="The request id."),
    workspace: str = WORKSPACE,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """One request's status and dates."""

    async def go() -> dsr_model.DataSubjectRequest:
        async with workspace_unit(workspace) as uow:
            return await dsr.get(uow, uuid_option(request_id, "the request id"))

    _print(_run(go), as_json=as_json)


@dsr_app.command("export")
@one_line_errors
def export(
    request_id: str = typer.Argument(..., help="A COMPLETED ACCESS or PORTABILITY request."),
    workspace: str = WORKSPACE,
) -> None:
    """Print the export (JSON) on stdout; the download is audited."""

    async def go() -> dict[str, Any]:
        key = uuid_option(request_id, "the request id")
        async with workspace_unit(workspace) as uow:
            request = await dsr.get(uow, key)
            document = await dsr.read_export(uow, _actor(), key)
            if document is None:
                raise ValidationError(
                    f"request {key} has no export (a {request.type.value} request, "
                    f"{request.status.value})"
                )
            await uow.commit()
            return document

    sys.stdout.write(orjson.dumps(_run(go), option=orjson.OPT_INDENT_2).decode() + "\n")


@dsr_app.command("extend")
@one_line_errors
def extend(
    request_id: str = typer.Argument(..., help="The request id."),
    months: int = typer.Option(..., help="1 or 2 calendar months."),
    reason: str = typer.Option(..., help="Why the request needs longer."),
    workspace: str = WORKSPACE,
) -> None:
    """Extend the deadline (two months more at most, Art. 12(3))."""

    async def go() -> dsr_model.DataSubjectRequest:
        async with workspace_unit(workspace) as uow:
            key = uuid_option(request_id, "the request id")
            request = await dsr.extend(uow, _actor(), key, months=months, reason=reason)
            await uow.commit()
            return request

    _print(_run(go), as_json=False)


@dsr_app.command("reject")
@one_line_errors
def reject(
    request_id: str = typer.Argument(..., help="The request id."),
    reason: str = typer.Option(..., help="Why the request is refused."),
    workspace: str = WORKSPACE,
) -> None:
    """Refuse a request that is manifestly unfounded or excessive (Art. 12(5))."""

    async def go() -> dsr_model.DataSubjectRequest:
        async with workspace_unit(workspace) as uow:
            key = uuid_option(request_id, "the request id")
            request = await dsr.reject(uow, _actor(), key, reason=reason)
            await uow.commit()
            return request

    _print(_run(go), as_json=False)


@dsr_app.command("process")
@one_line_errors
def process(
    request_id: str = typer.Argument(..., help="The request id."),
    workspace: str = WORKSPACE,
) -> None:
    """Carry a request out now, in this process (what the worker does); safe to repeat."""

    async def go() -> dsr_model.DataSubjectRequest:
        key = uuid_option(request_id, "the request id")
        async with workspace_unit(workspace) as uow:
            await dsr.start(uow, key)
            await uow.commit()
        async with workspace_unit(workspace) as uow:
            request = await dsr.carry_out(uow, _keys(), key)
            await uow.commit()
            return request

    _print(_run(go), as_json=False)


@compliance_app.command("ropa")
@one_line_errors
def ropa(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Records of processing (GDPR Art. 30), from the personal-data registry."""
    records = [
        {
            "store": h.table,
            "data_categories": h.category,
            "purpose": h.purpose,
            "retention": h.retention,
        }
        for h in contexts.registry.handlers()
    ]
    if as_json:
        print(json.dumps({"records_of_processing": records}, indent=2))
        return
    table = Table("store", "data categories", "purpose", "retention", show_lines=True)
    for record in records:
        table.add_row(*record.values())
    Console(width=160).print(table)
