"""Random calls of every GraphQL operation and every /v1 route: no 5xx, no INTERNAL.

Values are drawn by type from the schema, with odd Unicode (NUL, lone
surrogates), numbers JSON allows but we cannot keep (NaN, Infinity, integers
beyond 64 bits) and JSON nested deeper than any limit. The bodies are written
as the standard library writes JSON, which writes all of those.
"""

import base64
import json
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.graphql.input_checks import is_clean, value_faults
from api.http.bodies import parse_json
from tests.api.graphql_inputs import call, global_id, graphql_schema, post, send

SCHEMA = graphql_schema()
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ODD_TEXT = st.one_of(
    st.sampled_from(
        ["\x00", "a\x00@example.com", "\ud800", "x\udfff@example.com", "\udfff\ud800", "k\x00"]
    ),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=12),
    st.sampled_from(["", "\U0001f4a5", " " * 3, "é" * 40, "u1", "a@example.com", "email"]),
)
NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([2**31, 2**40, 2**63 - 1, 2**63, 2**64, 2**100, -(2**63) - 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _nested(depth: int, use_dict: bool) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"n": value} if use_dict else [value]
    return value


DEEP = st.builds(_nested, st.integers(50, 900), st.booleans())
SHALLOW = st.recursive(
    st.none() | st.booleans() | NUMBERS | ODD_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
    max_leaves=8,
)
JSON_VALUES = st.one_of(SHALLOW, SHALLOW, SHALLOW, DEEP)
IDS = st.one_of(
    ODD_TEXT,
    st.builds(
        global_id,
        st.sampled_from(["Profile", "ApiToken", "OAuthClient", "DataSubjectRequest", "Nope"]),
        ODD_TEXT,
    ),
    st.binary(max_size=12).map(lambda raw: base64.b64encode(raw).decode()),
)
DATETIMES = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "2030-01-01T00:00:00Z",
            "2030-01-01T00:00:00",
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "2030-02-30T00:00:00Z",
        ]
    ),
    ODD_TEXT,
)
SCALARS = {
    "String": ODD_TEXT,
    "JSON": JSON_VALUES,
    "Int": NUMBERS,
    "Float": NUMBERS,
    "Boolean": st.booleans(),
    "ID": IDS,
    "DateTime": DATETIMES,
}


def values_of(type_: GraphQLInputType, nullable: bool = True) -> st.SearchStrategy[Any]:
    """Values of a GraphQL input type: mostly well-typed, so that calls reach the resolvers."""
    if isinstance(type_, GraphQLNonNull):
        return values_of(type_.of_type, nullable=False)
    if isinstance(type_, GraphQLList):
        values = st.lists(values_of(type_.of_type), min_size=1, max_size=3)
    elif isinstance(type_, GraphQLInputObjectType):
        fields = type_.fields.items()
        values = st.fixed_dictionaries(
            {n: values_of(f.type) for n, f in fields if isinstance(f.type, GraphQLNonNull)},
            optional={
                n: values_of(f.type) for n, f in fields if not isinstance(f.type, GraphQLNonNull)
            },
        )
    elif isinstance(type_, GraphQLEnumType):
        values = st.sampled_from(list(type_.values))
    else:
        values = SCALARS[type_.name]
    return values | st.none() if nullable else values


def _arguments(field: GraphQLField) -> st.SearchStrategy[dict[str, Any]]:
    arguments = field.args.items()
    well_typed = st.fixed_dictionaries(
        {n: values_of(a.type) for n, a in arguments if isinstance(a.type, GraphQLNonNull)},
        optional={
            n: values_of(a.type) for n, a in arguments if not isinstance(a.type, GraphQLNonNull)
        },
    )
    # Now and then any JSON at all in place of one typed value.
    names = [n for n, _ in arguments]
    if not names:
        return well_typed
    retyped = st.builds(
        lambda values, name, value: {**values, name: value},
        well_typed,
        st.sampled_from(names),
        JSON_VALUES,
    )
    return st.one_of(well_typed, well_typed, well_typed, retyped)


OPERATIONS = [
    (root, name, field)
    for root, type_ in (("query", SCHEMA.query_type), ("mutation", SCHEMA.mutation_type))
    if type_ is not None
    for name, field in type_.fields.items()
]
CALLS = st.sampled_from(OPERATIONS).flatmap(
    lambda op: _arguments(op[2]).map(lambda values: call(op[0], op[1], op[2], values))
)


def _assert_no_fault_of_ours(response: Any) -> None:
    assert response.status_code < 500, response.text
    body = response.json()
    for error in body.get("errors") or []:
        assert error["extensions"]["code"] != "INTERNAL", body


@FUZZ
@given(request=CALLS)
def test_random_operations_get_no_internal_error(client, workspace, request):
    _assert_no_fault_of_ours(send(client, request, workspace.api_token))


@FUZZ
@given(body=st.one_of(st.binary(max_size=200), JSON_VALUES.map(lambda v: json.dumps(v).encode())))
def test_random_graphql_bodies_get_no_internal_error(client, workspace, body):
    _assert_no_fault_of_ours(post(client, body, workspace.api_token))


# --- the Segment-spec tracking API ----------------------------------------------------

MESSAGE_FIELDS = [
    "type",
    "userId",
    "anonymousId",
    "event",
    "name",
    "category",
    "properties",
    "traits",
    "context",
    "integrations",
    "timestamp",
    "sentAt",
    "messageId",
    "groupId",
    "previousId",
    "writeKey",
]
FIELD_VALUES = JSON_VALUES | DATETIMES
MESSAGES = st.builds(
    lambda base, extra: {**base, **extra},
    st.fixed_dictionaries(
        {},
        optional={
            "userId": st.sampled_from(["u1", "u2"]) | ODD_TEXT,
            "event": ODD_TEXT,
            "type": st.sampled_from(["track", "identify", "page", "screen", "group", "alias"]),
        },
    ),
    st.dictionaries(st.sampled_from(MESSAGE_FIELDS) | ODD_TEXT, FIELD_VALUES, max_size=6),
)
ROUTES = ["identify", "track", "page", "screen", "group", "alias", "batch"]


def _tracking_body(route: str, message: dict[str, Any], batch: list[Any], envelope: Any) -> bytes:
    if route == "batch":
        return json.dumps({"batch": batch, "context": envelope}).encode()
    return json.dumps(message).encode()


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


TRACKING_REQUESTS = st.builds(
    lambda route, message, batch, envelope, raw: (
        route,
        raw if raw is not None else _tracking_body(route, message, batch, envelope),
    ),
    st.sampled_from(ROUTES),
    MESSAGES,
    st.lists(MESSAGES | JSON_VALUES, max_size=4),
    JSON_VALUES,
    st.one_of(st.none(), st.none(), st.none(), st.binary(max_size=120)),
)


@FUZZ
@given(request=TRACKING_REQUESTS)
def test_random_tracking_bodies_get_no_5xx(client, workspace, request):
    route, body = request
    response = client.post(
        f"/v1/{route}",
        content=body,
        headers={"Content-Type": "application/json", "Authorization": _basic(workspace.write_key)},
    )
    assert response.status_code < 500, (route, body[:2000], response.text)


# --- the checks themselves --------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES)
def test_the_quick_check_agrees_with_the_walk_that_names_faults(value):
    assert is_clean(value) == (next(value_faults(value, "v"), None) is None)


@settings(max_examples=300, deadline=None)
@given(value=SHALLOW)
def test_a_body_is_read_as_it_was_written(value):
    written = json.dumps({"v": value}).encode()
    # Compared as written again: NaN is not equal to itself.
    assert json.dumps(parse_json(written)) == json.dumps({"v": value})
