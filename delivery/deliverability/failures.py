"""One recipient a bounce reports as failed or delayed: its address, status and class."""

from dataclasses import dataclass

from delivery.deliverability.status_codes import FailureClass

DIAGNOSTIC_CHARS = 300


@dataclass(frozen=True, slots=True)
class Failure:
    """`delayed` is what the report says (a delay notice); `bounce_class` follows the code."""

    recipient: str
    status: str | None
    bounce_class: FailureClass
    delayed: bool = False
    diagnostic: str | None = None
    original_recipient: str | None = None


def diagnostic(text: str | None) -> str | None:
    """A diagnostic shortened to one line of at most `DIAGNOSTIC_CHARS` characters."""
    if not text:
        return None
    line = " ".join(text.split())
    return line[:DIAGNOSTIC_CHARS] or None


def first_each(failures: list[Failure]) -> tuple[Failure, ...]:
    """The failures with one per recipient, the first reported."""
    seen: dict[str, Failure] = {}
    for failure in failures:
        seen.setdefault(failure.recipient, failure)
    return tuple(seen.values())
