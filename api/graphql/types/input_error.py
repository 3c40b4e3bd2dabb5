"""The typed error that every mutation payload lists in `errors`."""

import strawberry

from domain.errors import DomainError, FieldError


@strawberry.type
class InputError:
    index: int | None = None
    field: str | None = None
    code: str
    message: str
    line: int | None = strawberry.field(
        default=None, description="The line of the input that the error is about, when it has one."
    )

    @classmethod
    def from_domain(cls, error: DomainError, index: int | None = None) -> "InputError":
        line = getattr(error, "line", None)
        return cls(
            index=index, field=error.field, code=error.code, message=error.message,
            line=line if isinstance(line, int) else None,
        )  # fmt: skip

    @classmethod
    def of(cls, error: FieldError) -> "InputError":
        """The GraphQL shape of the one error record (`domain.errors.FieldError`)."""
        return cls(index=error.index, field=error.field, code=error.code, message=error.message)
