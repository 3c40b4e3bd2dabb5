"""The typed error that every mutation payload lists in `errors`."""

import strawberry

from domain.errors import DomainError, FieldError


@strawberry.type
class InputError:
    index: int | None = None
    field: str | None = None
    code: str
    message: str

    @classmethod
    def from_domain(cls, error: DomainError, index: int | None = None) -> "InputError":
        return cls(index=index, field=error.field, code=error.code, message=error.message)

    @classmethod
    def of(cls, error: FieldError) -> "InputError":
        """The GraphQL shape of the one error record (`domain.errors.FieldError`)."""
        return cls(index=error.index, field=error.field, code=error.code, message=error.message)
