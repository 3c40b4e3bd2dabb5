"""Typed input errors carried by every mutation payload."""

import strawberry

from domain.errors import DomainError


@strawberry.type
class InputError:
    index: int | None = None
    field: str | None = None
    code: str
    message: str

    @classmethod
    def from_domain(cls, error: DomainError, index: int | None = None) -> "InputError":
        return cls(index=index, field=error.field, code=error.code, message=error.message)
