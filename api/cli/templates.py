"""`cdp templates seed`: load the starter templates into a workspace.

It acts as the runtime role in the workspace, as the other commands do. A
starter whose name a template of the workspace already has is left alone,
so running it again changes nothing.
"""

import asyncio
import json

import typer
from rich.console import Console
from rich.table import Table

from api.cli.errors import one_line_errors
from api.cli.units import workspace_unit
from consent import audit
from delivery.templates import services
from delivery.templates.starter_templates import STARTERS

templates_app = typer.Typer(help="Templates: load the starter templates.", no_args_is_help=True)
WORKSPACE = typer.Option(..., "--workspace", "-w", help="The workspace id.")


async def _seed(workspace: str) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    async with workspace_unit(workspace) as uow:
        actor = audit.Actor.system("cdp templates seed")
        for starter in STARTERS:
            saved = await services.from_starter(uow, actor, starter)
            if saved is None:
                results.append({"key": starter.key, "name": starter.name, "created": False})
                continue
            results.append({
                "key": starter.key, "name": starter.name, "created": True,
                "id": services.global_id(saved.template.id),
                "warnings": [w.code for w in saved.version.warnings],
            })  # fmt: skip
        await uow.commit()
    return results


@templates_app.command("seed")
@one_line_errors
def seed(
    workspace: str = WORKSPACE,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object a line."),
) -> None:
    """Create the starter templates (welcome, abandoned cart, browse abandonment, post-purchase,
    birthday, win-back) that the workspace does not have yet."""
    results = asyncio.run(_seed(workspace))
    if as_json:
        for row in results:
            typer.echo(json.dumps(row))
        return
    table = Table("starter", "template", "result")
    for row in results:
        table.add_row(str(row["key"]), str(row["name"]), "created" if row["created"] else "exists")
    Console().print(table)
