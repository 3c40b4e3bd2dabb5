"""The codes of GraphQL errors, and how a client is shown them.

The typed error of mutation payloads is `api.graphql.types.input_error.InputError`.
"""

from collections.abc import Iterator

from graphql import (
    GraphQLError,
    GraphQLSyntaxError,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
)
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.relay.types import InvalidGlobalIDError

from domain.errors import DomainError

INTERNAL = "INTERNAL"
BAD_USER_INPUT = "BAD_USER_INPUT"
INVALID_ID = "INVALID_ID"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
MASKED_MESSAGE = "Unexpected error."


def _chain(error: GraphQLError) -> Iterator[BaseException]:
    """The error, then the exceptions it wraps (graphql-core wraps in layers).

    The error itself counts: strawberry raises its input errors as GraphQL
    errors, which graphql-core reports as they are.
    """
    yield error
    original: BaseException | None = error.original_error
    while original is not None:
        yield original
        original = original.original_error if isinstance(original, GraphQLError) else None


def _located_at(error: GraphQLError, *kinds: type) -> bool:
    return any(isinstance(node, kinds) for node in error.nodes or ())


def _at_a_value(error: GraphQLError) -> bool:
    # graphql-core locates an error in an argument's value at that value (a
    # literal, not a variable), and an error of a field's result at the field.
    # An unknown argument is located at the argument itself: a validation failure.
    return any(
        isinstance(node, ValueNode) and not isinstance(node, VariableNode)
        for node in error.nodes or ()
    )


def error_code(error: GraphQLError) -> str:
    """The stable code of a GraphQL error. Only a fault of ours is INTERNAL.

    - a domain error carries its own code (NOT_FOUND, FORBIDDEN, ...);
    - a global id that does not decode is INVALID_ID;
    - a value that a scalar or an argument refused is BAD_USER_INPUT, whether
      it came inline or as a variable;
    - a document that does not parse is GRAPHQL_PARSE_FAILED, and one that
      breaks a rule of the schema or of our limits GRAPHQL_VALIDATION_FAILED;
    - anything else that escaped a resolver or an extension is INTERNAL.

    A variable's value refused without an exception to show for it (a
    required one left out) reads as a validation failure here; the
    `VariableErrors` extension marks those BAD_USER_INPUT, as it knows they
    came from the variables.
    """
    if error.extensions and "code" in error.extensions:
        return str(error.extensions["code"])
    code = next((c for c in map(_code_of, _chain(error)) if c is not None), None)
    wraps = error.original_error is not None
    if code is None:
        if isinstance(error, GraphQLSyntaxError):
            code = GRAPHQL_PARSE_FAILED
        elif _at_a_value(error) or (
            error.path is None and wraps and _located_at(error, VariableDefinitionNode)
        ):
            code = BAD_USER_INPUT
        elif error.path is None and not wraps:
            code = GRAPHQL_VALIDATION_FAILED
    return code or INTERNAL


def _code_of(cause: BaseException) -> str | None:
    if isinstance(cause, DomainError):
        return cause.code
    if isinstance(cause, InvalidGlobalIDError):
        return INVALID_ID
    if isinstance(cause, StrawberryInputCoercionError):
        return BAD_USER_INPUT
    return None


def is_internal(error: GraphQLError) -> bool:
    return error_code(error) == INTERNAL


def answered(error: GraphQLError, *, mask_internal: bool) -> GraphQLError:
    """The error as a client gets it: with its code, and a domain error's field.

    With `mask_internal` (production) a fault of ours keeps its code and
    location but not its message, which may name hosts, SQL or data.
    """
    code = error_code(error)
    if code == INTERNAL and mask_internal:
        return GraphQLError(
            MASKED_MESSAGE,
            error.nodes,
            error.source,
            error.positions,
            error.path,
            extensions={"code": INTERNAL},
        )
    extensions = {**(error.extensions or {}), "code": code}
    original = error.original_error
    if isinstance(original, DomainError) and original.field is not None:
        extensions.setdefault("field", original.field)
    error.extensions = extensions
    return error
