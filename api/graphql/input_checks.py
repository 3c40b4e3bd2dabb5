"""The one check of every string and JSON value a GraphQL operation brings in.

PostgreSQL refuses some values that JSON and GraphQL allow: a NUL character
in text or jsonb, and a lone UTF-16 surrogate, which is not Unicode at all. The
database keeps a JSON integer exactly, but the rest of the path (orjson, our
readers) holds integers to 64 bits and reads a larger one back as a float,
and no JSON column keeps NaN or Infinity. Such a value is refused here,
before any resolver runs, rather than failing in SQL or being quietly altered
on the way in. The rules:

- text (strings, and the keys of JSON objects) holds no NUL and no lone surrogate;
- numbers are finite, and integers fit in a signed 64-bit integer;
- an argument's value is nested at most `MAX_DEPTH` levels deep, which leaves
  room for the levels a value gains when it is written back out (a payload,
  an export) within the 255 that orjson writes.

Every root field of the schema is wrapped once (`check_root_fields`): the
wrapper checks the field's arguments and those of every field selected under
it. A mutation answers a refusal with its payload, whose `errors` list the
faults (code `INVALID_VALUE`, `field` the argument path); a query field
answers with a GraphQL error whose code is `BAD_USER_INPUT`.
"""

import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from typing import Any

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLFieldResolver,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
    default_field_resolver,
    value_from_ast_untyped,
)
from strawberry.types.base import StrawberryList, StrawberryObjectDefinition, StrawberryOptional

from api.graphql.types.input_error import InputError
from domain.errors import DomainError, FieldError

MAX_DEPTH = 64
MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**63 - 1
# A refusal lists at most this many faults; the first ones are enough to fix the call.
MAX_REPORTED = 20
INVALID_VALUE = "INVALID_VALUE"

_SURROGATE = re.compile("[\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _fault(where: str, problem: str) -> FieldError:
    return FieldError(None, where, f"{where} {problem}", INVALID_VALUE)


class InputRefusedError(DomainError):
    """A query field's arguments hold a value that cannot be stored or compared."""

    code = "BAD_USER_INPUT"


def text_problem(text: str) -> str | None:
    """Why PostgreSQL would refuse `text`, or None when it would keep it."""
    if "\x00" in text:
        return "contains a NUL character (U+0000), which cannot be stored"
    if not text.isascii() and _SURROGATE.search(text):
        return "contains a lone surrogate (U+D800 to U+DFFF), which is not valid Unicode"
    return None


def _scalar_problem(item: object) -> str | None:
    if isinstance(item, str):
        return text_problem(item)
    if isinstance(item, bool) or not isinstance(item, int | float):
        # Values of other types (a parsed DateTime, an enum member, a global
        # id) were made by a scalar from text it checked.
        return None
    if isinstance(item, int):
        if MIN_INTEGER <= item <= MAX_INTEGER:
            return None
        return "is an integer outside the signed 64-bit range, which cannot be kept exactly"
    return None if math.isfinite(item) else "is not a finite number"


def _key_path(base: str, key: str) -> str:
    if _PLAIN_KEY.match(key):
        return f"{base}.{key}"
    # Escaped, so the path itself is text any client and database can hold.
    return f"{base}[{json.dumps(key)}]"


def _entries(
    container: dict[Any, object] | list[object] | tuple[object, ...], where: str
) -> Iterator[tuple[str, object, str | None]]:
    """Each entry's path and value, and what is wrong with its key if anything."""
    if isinstance(container, dict):
        for key, child in container.items():
            text = str(key)
            yield _key_path(where, text), child, text_problem(text)
    else:
        for index, child in enumerate(container):
            yield f"{where}[{index}]", child, None


def _text_clean(text: str) -> bool:
    return "\x00" not in text and (text.isascii() or _SURROGATE.search(text) is None)


_CONTAINERS = (dict, list, tuple)


def is_clean(value: object) -> bool:  # noqa: C901, PLR0911, PLR0912 - one loop, inlined for speed
    """Whether `value` has no fault: `value_faults` finds none exactly when this is True.

    The common case, checked by exact type and without building a path for
    every value; a call of 1,000 profiles holds tens of thousands of them.
    """
    stack: list[tuple[Any, int]] = [([value], -1)]
    while stack:
        container, depth = stack.pop()
        if depth >= MAX_DEPTH:
            return False
        depth += 1
        if isinstance(container, dict):
            for key in container:
                if not _text_clean(str(key)):
                    return False
            container = container.values()
        for child in container:
            kind = type(child)
            if kind is str:
                if "\x00" in child or not (child.isascii() or _SURROGATE.search(child) is None):
                    return False
            elif kind is dict or kind is list:
                stack.append((child, depth))
            elif kind is int:
                if child < MIN_INTEGER or child > MAX_INTEGER:
                    return False
            elif kind is float:
                if not math.isfinite(child):
                    return False
            elif kind is bool or child is None:
                continue
            # A subclass, or a value a scalar made: the careful way.
            elif isinstance(child, _CONTAINERS):
                stack.append((child, depth))
            elif _scalar_problem(child) is not None:
                return False
    return True


def value_faults(value: object, path: str) -> Iterator[FieldError]:
    """The faults in one argument's value, in document order."""
    # An explicit stack: a value may be nested far deeper than Python recurses.
    stack: list[tuple[object, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if not isinstance(item, dict | list | tuple):
            problem = _scalar_problem(item)
            if problem is not None:
                yield _fault(where, problem)
        elif depth >= MAX_DEPTH:
            yield _fault(where, f"is nested more than {MAX_DEPTH} levels deep")
        else:
            children = []
            for child_path, child, key_problem in _entries(item, where):
                if key_problem is not None:
                    yield _fault(child_path, f"has a key that {key_problem}")
                else:
                    children.append((child, child_path, depth + 1))
            stack.extend(reversed(children))


def _selection_faults(
    selection_set: SelectionSetNode,
    info: GraphQLResolveInfo[Any],
    variables: dict[str, Any],
    prefix: str,
    checked_fragments: set[str],
) -> Iterator[FieldError]:
    """The faults in the arguments of the fields selected under a root field.

    A fragment is checked once, at its first spread: its arguments do not
    depend on where it is spread, and a document that spreads fragments inside
    fragments would otherwise be walked an exponential number of times.
    """
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            key = selection.alias.value if selection.alias else selection.name.value
            path = f"{prefix}.{key}" if prefix else key
            for argument in selection.arguments or ():
                value = value_from_ast_untyped(argument.value, variables)
                if not is_clean(value):
                    yield from value_faults(value, f"{path}.{argument.name.value}")
            if selection.selection_set is not None:
                yield from _selection_faults(
                    selection.selection_set, info, variables, path, checked_fragments
                )
        elif isinstance(selection, InlineFragmentNode):
            yield from _selection_faults(
                selection.selection_set, info, variables, prefix, checked_fragments
            )
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment: FragmentDefinitionNode | None = info.fragments.get(name)
            if fragment is not None and name not in checked_fragments:
                checked_fragments.add(name)
                yield from _selection_faults(
                    fragment.selection_set, info, variables, prefix, checked_fragments
                )


def field_faults(info: GraphQLResolveInfo[Any], arguments: Mapping[str, Any]) -> list[FieldError]:
    """The faults in a root field's arguments (as coerced) and in its selections."""

    def every_fault() -> Iterator[FieldError]:
        for name, value in arguments.items():
            if not is_clean(value):
                yield from value_faults(value, name)
        # graphql-core 3.3 keeps the coerced values beside their sources;
        # strawberry's execution hands resolvers the plain coerced mapping.
        values: Any = info.variable_values
        variables: dict[str, Any] = dict(getattr(values, "coerced", values) or {})
        checked_fragments: set[str] = set()
        for node in info.field_nodes:
            if node.selection_set is not None:
                yield from _selection_faults(
                    node.selection_set, info, variables, "", checked_fragments
                )

    return list(islice(every_fault(), MAX_REPORTED))


PayloadFactory = Callable[[list[InputError]], object]


def _payload_factory(definition: StrawberryObjectDefinition) -> PayloadFactory | None:
    """Build the payload type with only `errors` set, or None when it has no such list."""
    origin = definition.origin
    if definition.get_field("errors") is None:
        return None
    empty: dict[str, object] = {}
    for field in definition.fields:
        if field.python_name == "errors" or field.base_resolver is not None or not field.init:
            continue
        if (
            field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING
        ):
            continue
        if isinstance(field.type, StrawberryList):
            empty[field.python_name] = []
        elif isinstance(field.type, StrawberryOptional):
            empty[field.python_name] = None
        else:
            return None

    def build(errors: list[InputError]) -> object:
        # Each call gets new empty lists, so no payload shares one with another.
        values = {name: [] if isinstance(v, list) else v for name, v in empty.items()}
        return origin(**values, errors=errors)

    return build


def _refusal(faults: list[FieldError], payload: PayloadFactory | None) -> object:
    if payload is not None:
        return payload([InputError.of(fault) for fault in faults])
    first = faults[0]
    raise InputRefusedError(first.message, field=first.field)


def _checked(resolve: GraphQLFieldResolver, payload: PayloadFactory | None) -> GraphQLFieldResolver:
    def resolve_checked(root: object, info: GraphQLResolveInfo[Any], **arguments: Any) -> object:
        faults = field_faults(info, arguments)
        if faults:
            return _refusal(faults, payload)
        return resolve(root, info, **arguments)

    return resolve_checked


def _payload_definition(
    schema: strawberry.Schema, field: GraphQLField
) -> StrawberryObjectDefinition | None:
    output = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    if not isinstance(output, GraphQLObjectType):
        return None
    concrete = schema.schema_converter.type_map.get(output.name)
    definition = concrete.definition if concrete is not None else None
    return definition if isinstance(definition, StrawberryObjectDefinition) else None


def check_root_fields(schema: strawberry.Schema) -> dict[str, list[str]]:
    """Wrap every root field's resolver in the input check; the wrapped fields by root type.

    A mutation must answer a refusal with its payload, so a mutation whose
    payload cannot be built with only `errors` set fails here, when the schema
    is built, rather than on a client's bad input.
    """
    graphql_schema = schema._schema  # noqa: SLF001 - strawberry keeps graphql-core's schema here
    wrapped: dict[str, list[str]] = {}
    for root in (graphql_schema.query_type, graphql_schema.mutation_type):
        if root is None:
            continue
        is_mutation = root is graphql_schema.mutation_type
        for name, field in root.fields.items():
            payload = None
            if is_mutation:
                definition = _payload_definition(schema, field)
                payload = _payload_factory(definition) if definition is not None else None
                if payload is None:
                    raise TypeError(f"mutation {name} must return a payload with `errors`")
            field.resolve = _checked(field.resolve or default_field_resolver, payload)
            wrapped.setdefault(root.name, []).append(name)
    return wrapped
