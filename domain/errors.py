"""Typed domain errors.

A `DomainError` is an expected failure: its message is safe to show to a
client and its `code` is stable. Anything else that escapes is a bug and is
masked at the API boundary.
"""

from typing import ClassVar


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


class AuthenticationError(DomainError):
    code = "UNAUTHENTICATED"


class AuthorizationError(DomainError):
    code = "FORBIDDEN"
