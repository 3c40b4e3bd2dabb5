"""`cdp mail ...`: look at received mail as the bounce processor sees it.

`classify` reads one message (a file, or `-` for standard input) and says
what it reports, without a database: with `--json`, the one JSON object of
the fixtures' manifest; without, a short summary for a person.
"""

import json
import sys
from pathlib import Path

import typer

from api.cli.errors import one_line_errors
from delivery.deliverability.reports import Report, classify
from domain.errors import ValidationError

mail_app = typer.Typer(
    help="Mail: what a received bounce, complaint or auto-reply reports.", no_args_is_help=True
)
STDIN = "-"


def _read(path: str) -> bytes:
    if path == STDIN:
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None


def summary(report: Report) -> list[str]:
    lines = [
        f"kind: {report.kind}",
        f"class: {report.bounce_class}" + (" (delayed)" if report.delayed else ""),
        f"recipients: {', '.join(report.recipients) or '-'}",
        f"status: {report.status or '-'}",
        f"original message-id: {report.original_message_id or '-'}",
    ]
    if report.feedback_type:
        lines.insert(2, f"feedback type: {report.feedback_type}")
    return lines


@mail_app.command("classify")
@one_line_errors
def classify_command(
    path: str = typer.Argument(..., metavar="FILE", help="The message (.eml), or - for stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Classify one message: DSN, ARF complaint, auto-reply or other; hard, soft or neither."""
    report = classify(_read(path))
    if as_json:
        print(json.dumps(report.manifest_fields()))
        return
    print("\n".join(summary(report)))
