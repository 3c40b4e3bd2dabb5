"""Typed domain errors.

A `DomainError` is an expected failure: its message is safe to show to a
client and its `code` is stable. Anything else that escapes is a bug and is
masked at the API boundary.
"""

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one part of an input, for whoever sent it.

    `index`: the item's position in a list (a batch's message, an upsert's
    item, a file's line), None for a single input; `field`: the path inside
    it, None for the item as a whole; `code`: stable, for programs;
    `message`: for a person.
    """

    index: int | None
    field: str | None
    message: str
    code: str = "INVALID"

    def describe(self) -> str:
        where = self.field or "(item)"
        return (
            f"batch[{self.index}].{where}: {self.message}"
            if self.index is not None
            else (f"{where}: {self.message}")
        )


class DomainError(Exception):
    code: ClassVar[str] = "INVALID"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFoundError(DomainError):
    code = "NOT_FOUND"


class ValidationError(DomainError):
    code = "INVALID"


class ConflictError(DomainError):
    code = "CONFLICT"


class InUseError(ConflictError):
    """The object is referenced by another and cannot be deleted while it is."""

    code = "IN_USE"


class AuthenticationError(DomainError):
    code = "UNAUTHENTICATED"


class AuthorizationError(DomainError):
    code = "FORBIDDEN"
