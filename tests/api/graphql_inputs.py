"""Calls built from the schema itself, and what a refused call must leave behind."""

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
    is_composite_type,
    is_required_argument,
    is_required_input_field,
)
from psycopg import sql

from api.graphql.schema import build_schema
from api.settings import Settings

Step = str | int


def graphql_schema() -> GraphQLSchema:
    return build_schema(Settings())._schema


def global_id(type_name: str, node_id: str) -> str:
    return base64.b64encode(f"{type_name}:{node_id}".encode("utf-8", "surrogatepass")).decode()


def sample(named: GraphQLNamedType) -> Any:
    """A well-formed value of a scalar or enum type."""
    if isinstance(named, GraphQLEnumType):
        return next(iter(named.values))
    return {
        "String": "sample",
        "JSON": {"sample": 1},
        "Int": 1,
        "Float": 0.5,
        "Boolean": False,
        "ID": global_id("ApiToken", str(uuid.uuid4())),
        "DateTime": "2030-01-01T00:00:00Z",
    }[named.name]


def positions(
    type_: GraphQLInputType, prefix: tuple[Step, ...] = ()
) -> Iterator[tuple[tuple[Step, ...], str]]:
    """Every path to a scalar inside an input type, with the scalar's name.

    Lists are taken at index 0.
    """
    if isinstance(type_, GraphQLNonNull):
        yield from positions(type_.of_type, prefix)
    elif isinstance(type_, GraphQLList):
        yield from positions(type_.of_type, (*prefix, 0))
    elif isinstance(type_, GraphQLInputObjectType):
        for name, field in type_.fields.items():
            yield from positions(field.type, (*prefix, name))
    else:
        yield prefix, type_.name


def build(type_: GraphQLInputType, target: tuple[Step, ...] | None, injected: Any) -> Any:
    """A value of `type_` with its required parts sampled and `injected` at `target`."""
    if isinstance(type_, GraphQLNonNull):
        return build(type_.of_type, target, injected)
    if target == ():
        return injected
    if isinstance(type_, GraphQLList):
        return [build(type_.of_type, None if target is None else target[1:], injected)]
    if isinstance(type_, GraphQLInputObjectType):
        value = {}
        for name, field in type_.fields.items():
            if target is not None and target[0] == name:
                value[name] = build(field.type, target[1:], injected)
            elif is_required_input_field(field):
                value[name] = build(field.type, None, injected)
        return value
    return sample(type_)


def path_text(argument: str, steps: tuple[Step, ...]) -> str:
    """A path as the API names it in an error, e.g. input[0].identifiers[0].value."""
    text = argument
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else f".{step}"
    return text


def key_text(base: str, key: str) -> str:
    return f"{base}[{json.dumps(key)}]"


@dataclass(frozen=True)
class Call:
    root: str  # "query" or "mutation"
    field: str
    document: str
    variables: dict[str, Any]


def selection(field: GraphQLField, root: str) -> str:
    output = get_named_type(field.type)
    if root == "mutation" and isinstance(output, GraphQLObjectType) and "errors" in output.fields:
        return "{ __typename errors { index field code message } }"
    return "{ __typename }" if is_composite_type(output) else ""


def call(
    root: str, name: str, field: GraphQLField, values: dict[str, Any], *, inline: bool = False
) -> Call:
    """A call of one root field with these argument values, as variables or inline."""
    arguments: dict[str, GraphQLArgument] = field.args
    if inline:
        passed = ", ".join(f"{a}: {literal(values[a], arguments[a].type)}" for a in values)
        document = f"{root} {{ {name}({passed}) {selection(field, root)} }}"
        return Call(root, name, document, {})
    definitions = ", ".join(f"${a}: {arguments[a].type}" for a in values)
    passed = ", ".join(f"{a}: ${a}" for a in values)
    head = f"{root}({definitions})" if values else root
    document = f"{head} {{ {name}{f'({passed})' if values else ''} {selection(field, root)} }}"
    return Call(root, name, document, dict(values))


def literal(value: Any, type_: GraphQLInputType) -> str:
    """A GraphQL literal of `type_`; strings keep their escapes, enums are bare names."""
    if isinstance(type_, GraphQLNonNull):
        return literal(value, type_.of_type)
    if value is None:
        return "null"
    if isinstance(type_, GraphQLList):
        return "[" + ", ".join(literal(v, type_.of_type) for v in value) + "]"
    if isinstance(type_, GraphQLInputObjectType):
        fields = type_.fields
        return "{" + ", ".join(f"{k}: {literal(v, fields[k].type)}" for k, v in value.items()) + "}"
    if isinstance(type_, GraphQLEnumType):
        return str(value)
    return _untyped_literal(value)


def _untyped_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(_untyped_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_untyped_literal(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def required_values(field: GraphQLField) -> dict[str, Any]:
    return {
        name: build(argument.type, None, None)
        for name, argument in field.args.items()
        if is_required_argument(argument)
    }


def tenant_rows(database_url: str, workspace_id: object) -> dict[str, int]:
    """The workspace's row count in every table that has a workspace_id."""
    with psycopg.connect(database_url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT c.table_name FROM information_schema.columns c "
                "JOIN information_schema.tables t USING (table_schema, table_name) "
                "WHERE c.column_name = 'workspace_id' AND c.table_schema = 'public' "
                "AND t.table_type = 'BASE TABLE' ORDER BY 1"
            )
        ]
        counts = {}
        for table in tables:
            query = sql.SQL("SELECT count(*) FROM {} WHERE workspace_id = %s").format(
                sql.Identifier(table)
            )
            counts[table] = conn.execute(query, (workspace_id,)).fetchone()[0]  # type: ignore[index]
        return counts


def post(client: Any, body: bytes, token: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/graphql", content=body, headers=headers)


def send(client: Any, request: Call, token: str | None) -> Any:
    """Post a call; the body is written as the standard library writes JSON.

    That is how a client writes NaN, Infinity, lone surrogates and integers
    beyond 64 bits, all of which orjson would refuse to write.
    """
    body = json.dumps({"query": request.document, "variables": request.variables})
    return post(client, body.encode(), token)
