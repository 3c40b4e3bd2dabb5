"""Hostile input gets a clear client error, never INTERNAL or a 5xx, and changes nothing.

The first tests are generated from the schema: every String and JSON position
of every argument of every root field, and every ID position, gets a value
that PostgreSQL would refuse or that is malformed. The rest are the cases an
outside fuzzing run found, one test each.
"""

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from graphql import GraphQLObjectType, get_introspection_query, is_non_null_type

from api.graphql.input_checks import MAX_DEPTH
from domain import workspaces
from tests.api.graphql_inputs import (
    Call,
    build,
    call,
    global_id,
    graphql_schema,
    key_text,
    path_text,
    positions,
    post,
    required_values,
    send,
    tenant_rows,
)
from tests.conftest import gql

SCHEMA = graphql_schema()
NUL = "a\x00b"
SURROGATE = "a\ud800b"


@dataclass
class Env:
    client: Any
    token: str
    workspace_id: object
    database_url: str
    sql: Any

    def rows(self) -> dict[str, int]:
        return tenant_rows(self.database_url, self.workspace_id)


@pytest.fixture
def env(client, workspace, database_url, sql_counter) -> Env:
    return Env(client, workspace.api_token, workspace.workspace.id, database_url, sql_counter)


@dataclass(frozen=True)
class TextCase:
    root: str
    name: str
    argument: str
    steps: tuple[Any, ...]
    injected: Any
    expected: str
    inline: bool


def _root(root: str) -> GraphQLObjectType:
    found = SCHEMA.mutation_type if root == "mutation" else SCHEMA.query_type
    assert found is not None
    return found


def _text_cases() -> list[Any]:
    cases = []
    for root in ("mutation", "query"):
        for name, field in _root(root).fields.items():
            for argument_name, argument in field.args.items():
                for steps, scalar in positions(argument.type):
                    where = path_text(argument_name, steps)
                    if scalar == "String":
                        injections = [
                            ("nul", NUL, where, True),
                            ("surrogate", SURROGATE, where, False),
                        ]
                    elif scalar == "JSON":
                        injections = [
                            ("nul-value", {"k": {"deep": [NUL]}}, f"{where}.k.deep[0]", True),
                            ("nul-key", {"k\x00": 1}, key_text(where, "k\x00"), False),
                            ("surrogate-key", {"\udc00": 1}, key_text(where, "\udc00"), False),
                        ]
                    else:
                        continue
                    for label, value, expected, inline_too in injections:
                        for inline in (False, True) if inline_too else (False,):
                            mode = "inline" if inline else "variables"
                            case = TextCase(
                                root, name, argument_name, steps, value, expected, inline
                            )
                            cases.append(pytest.param(case, id=f"{name}:{where}:{label}:{mode}"))
    return cases


def _values(root: str, name: str, argument: str, steps: tuple[Any, ...], injected: Any) -> Any:
    field = _root(root).fields[name]
    values = required_values(field)
    values[argument] = build(field.args[argument].type, steps, injected)
    return field, values


def _assert_refused(response: Any, request: Call, expected_field: str) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    if request.root == "mutation":
        assert "errors" not in body, body
        payload = body["data"][request.field]
        errors = payload["errors"]
        assert {"field": expected_field, "code": "INVALID_VALUE"} in [
            {"field": e["field"], "code": e["code"]} for e in errors
        ], errors
        assert all(e["message"].startswith(e["field"]) for e in errors)
    else:
        errors = body["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"], body
        assert errors[0]["extensions"]["field"] == expected_field, body
        assert errors[0]["path"] == [request.field]


def test_every_string_and_json_position_is_generated():
    cases = {c.id.split(":")[0] for c in _text_cases()}
    mutations_with_text = {
        name
        for name, field in _root("mutation").fields.items()
        if any(s in ("String", "JSON") for a in field.args.values() for _, s in positions(a.type))
    }
    assert mutations_with_text <= cases
    assert {
        "upsertProfiles",
        "recordConsent",
        "publishConsentNotice",
        "createDataSubjectRequest",
        "createApiToken",
        "createOAuthClient",
        "profiles",
        "auditLog",
    } <= cases


@pytest.mark.parametrize("case", _text_cases())
def test_text_postgresql_refuses_is_refused_before_any_sql(env, case):
    field, values = _values(case.root, case.name, case.argument, case.steps, case.injected)
    request = call(case.root, case.name, field, values, inline=case.inline)
    before = env.rows()
    env.sql.statements.clear()

    response = send(env.client, request, env.token)

    _assert_refused(response, request, case.expected)
    assert env.sql.count == 0, env.sql.statements
    assert env.rows() == before


def _id_cases() -> list[Any]:
    """(root, field, argument, steps) of every ID inside every argument."""
    cases = []
    for root in ("mutation", "query"):
        for name, field in _root(root).fields.items():
            for argument_name, argument in field.args.items():
                for steps, scalar in positions(argument.type):
                    if scalar == "ID":
                        where = path_text(argument_name, steps)
                        case = (root, name, argument_name, steps)
                        cases.append(pytest.param(case, id=f"{name}:{where}"))
    return cases


@pytest.mark.parametrize("malformed", ["abc", base64.b64encode(b"no-colon").decode(), "%%%"])
@pytest.mark.parametrize("case", _id_cases())
def test_a_malformed_global_id_is_invalid_id(env, case, malformed):
    root, name, argument, steps = case
    field, values = _values(root, name, argument, steps, malformed)
    body = send(env.client, call(root, name, field, values), env.token).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_ID"], body


@pytest.mark.parametrize("case", _id_cases())
def test_a_global_id_holding_a_nul_is_simply_not_found(env, case):
    root, name, argument, steps = case
    field, values = _values(root, name, argument, steps, global_id("ApiToken", "x\x00y"))
    response = send(env.client, call(root, name, field, values), env.token)
    assert response.status_code == 200, response.text
    body = response.json()
    if root == "mutation":
        assert "errors" not in body, body
        assert [e["code"] for e in body["data"][name]["errors"]] == ["NOT_FOUND"], body
    elif is_non_null_type(_root(root).fields[name].type):
        # A field that cannot be null (simulateJourney) says so with the error's code.
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"], body
    else:
        assert "errors" not in body, body
        assert body["data"][name] is None


# --- request bodies -----------------------------------------------------------------


def _bad_request(response: Any, fragment: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert fragment in body["errors"][0]["message"], body


def test_a_body_nested_3000_deep_is_400(client, workspace, sql_counter):
    deep = b"[" * 3000 + b"]" * 3000
    _bad_request(post(client, deep, workspace.api_token), "nested too deeply")
    in_variables = b'{"query": "{ __typename }", "variables": {"x": ' + deep + b"}}"
    _bad_request(post(client, in_variables, workspace.api_token), "nested too deeply")
    assert sql_counter.count == 0


def test_a_body_that_is_not_utf8_is_400(client, workspace):
    _bad_request(post(client, b'{"query": "{ __typename \xff }"}', workspace.api_token), "UTF-8")
    latin1 = '{"query": "{ workspace { name } }", "x": "caf\u00e9"}'.encode("latin-1")
    _bad_request(post(client, latin1, workspace.api_token), "UTF-8")


@pytest.mark.parametrize("body", [b'"hello"', b"1", b"null", b"true", b"[]"])
def test_a_body_that_is_not_a_json_object_is_400(client, workspace, body):
    response = post(client, body, workspace.api_token)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_an_operation_name_that_is_not_a_string_is_400(client, workspace):
    body = json.dumps({"query": "query A { __typename }", "operationName": {"a": 1}})
    _bad_request(post(client, body.encode(), workspace.api_token), "operationName")


# --- numbers in JSON ----------------------------------------------------------------

UPSERT = """
mutation($input: [ProfileUpsertInput!]!, $key: String) {
  upsertProfiles(input: $input, idempotencyKey: $key) {
    profiles { id traits }
    errors { index field code message }
  }
}"""


def _upsert(client: Any, token: str, items: list[Any], key: str | None = None) -> Any:
    body = json.dumps({"query": UPSERT, "variables": {"input": items, "key": key}})
    response = post(client, body.encode(), token)
    assert response.status_code == 200, response.text
    result = response.json()
    assert "errors" not in result, result
    return result["data"]["upsertProfiles"]


def _person(email: str, traits: Any = None) -> dict[str, Any]:
    return {"identifiers": [{"kind": "email", "value": email}], "traits": traits}


def test_nan_beside_a_huge_integer_is_refused_naming_both(client, workspace, database_url):
    before = tenant_rows(database_url, workspace.workspace.id)
    traits = {"a": float("nan"), "b": 2**100}
    result = _upsert(client, workspace.api_token, [_person("n@example.com", traits)])
    assert result["profiles"] == []
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("input[0].traits.a", "INVALID_VALUE"),
        ("input[0].traits.b", "INVALID_VALUE"),
    ]
    assert "finite" in result["errors"][0]["message"]
    assert "64-bit" in result["errors"][1]["message"]
    assert tenant_rows(database_url, workspace.workspace.id) == before


@pytest.mark.parametrize(
    "number",
    [float("nan"), float("inf"), float("-inf"), 2**100, 2**63, -(2**63) - 1, 2**64 - 1],
    ids=["nan", "infinity", "-infinity", "2^100", "2^63", "-2^63-1", "2^64-1"],
)
def test_a_number_json_cannot_keep_exactly_is_refused_not_altered(client, workspace, number):
    result = _upsert(
        client,
        workspace.api_token,
        [_person("ok@example.com"), _person("x@example.com", {"v": number})],
    )
    assert result["profiles"] == []  # the whole call is refused, the good item too
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("input[1].traits.v", "INVALID_VALUE")
    ]
    found = gql(
        client,
        'query { profile(identifier: {kind: "email", value: "ok@example.com"}) { id } }',
        token=workspace.api_token,
    )
    assert found["data"]["profile"] is None


def test_a_huge_exponent_inline_is_refused(client, workspace):
    document = (
        'mutation { upsertProfiles(input: [{identifiers: [{kind: "email", value: "e@example.com"}],'
        " traits: {v: 1e400}}]) { errors { field code } } }"
    )
    body = gql(client, document, token=workspace.api_token)
    assert body["data"]["upsertProfiles"]["errors"] == [
        {"field": "input[0].traits.v", "code": "INVALID_VALUE"}
    ]


def test_numbers_within_the_rule_are_kept_exactly(client, workspace):
    traits = {"max": 2**63 - 1, "min": -(2**63), "big": 123456789012345678, "f": 0.1}
    result = _upsert(client, workspace.api_token, [_person("exact@example.com", traits)])
    assert result["errors"] == []
    assert result["profiles"][0]["traits"] == traits
    assert [type(v) for v in result["profiles"][0]["traits"].values()] == [int, int, int, float]


def test_json_nested_deeper_than_the_limit_is_refused(client, workspace):
    deep: Any = "leaf"
    for _ in range(300):
        deep = {"n": deep}
    result = _upsert(client, workspace.api_token, [_person("deep@example.com", deep)])
    assert result["profiles"] == []
    [error] = result["errors"]
    assert error["code"] == "INVALID_VALUE"
    assert f"nested more than {MAX_DEPTH} levels" in error["message"]
    nested: Any = 1
    for _ in range(MAX_DEPTH - 4):
        nested = [nested]
    kept = _upsert(client, workspace.api_token, [_person("deep-ok@example.com", {"n": nested})])
    assert kept["errors"] == []
    assert kept["profiles"][0]["traits"] == {"n": nested}


# --- NUL and lone surrogates in the named arguments --------------------------------


def _mutation(name: str, signature: str, arguments: str) -> str:
    selection = "{ errors { field code } }"
    return f"mutation({signature}) {{ {name}({arguments}) {selection} }}"


CONSENT = {
    "identifier": {"kind": "email", "value": "c@example.com"},
    "purpose": "marketing",
    "channel": "email",
    "status": "GRANTED",
    "lawfulBasis": "consent",
    "source": NUL,
}
NOTICE = _mutation("publishConsentNotice", "$t: String!", 'purpose: "p", version: "1", text: $t')
DSR = {
    "identifier": {"kind": "email", "value": "d@example.com"},
    "type": "RECTIFICATION",
    "corrections": {"name": NUL},
}
NAMED_MUTATIONS = {
    "upsert-identifier-value": (
        UPSERT, {"input": [_person(NUL)]}, "upsertProfiles", "input[0].identifiers[0].value"
    ),
    "upsert-identifier-kind": (
        UPSERT,
        {"input": [{"identifiers": [{"kind": NUL, "value": "v"}]}]},
        "upsertProfiles",
        "input[0].identifiers[0].kind",
    ),
    "upsert-trait-key": (
        UPSERT,
        {"input": [_person("t@example.com", {"a\x00": 1})]},
        "upsertProfiles",
        'input[0].traits["a\\u0000"]',
    ),
    "upsert-trait-value-nested": (
        UPSERT,
        {"input": [_person("t@example.com", {"a": [{"b": SURROGATE}]})]},
        "upsertProfiles",
        "input[0].traits.a[0].b",
    ),
    "upsert-idempotency-key": (
        UPSERT, {"input": [_person("t@example.com")], "key": NUL}, "upsertProfiles", "idempotencyKey"
    ),
    "record-consent-source": (
        _mutation("recordConsent", "$i: ConsentInput!", "input: $i"),
        {"i": CONSENT},
        "recordConsent",
        "input.source",
    ),
    "publish-notice-text": (NOTICE, {"t": SURROGATE}, "publishConsentNotice", "text"),
    "dsr-corrections": (
        _mutation("createDataSubjectRequest", "$i: DataSubjectRequestInput!", "input: $i"),
        {"i": DSR},
        "createDataSubjectRequest",
        "input.corrections.name",
    ),
    "api-token-scope": (
        _mutation("createApiToken", "$i: CreateApiTokenInput!", "input: $i"),
        {"i": {"name": "t", "scopes": ["admin", NUL]}},
        "createApiToken",
        "input.scopes[1]",
    ),
    "oauth-client-name": (
        _mutation("createOAuthClient", "$i: CreateOAuthClientInput!", "input: $i"),
        {"i": {"name": NUL, "scopes": ["admin"]}},
        "createOAuthClient",
        "input.name",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", NAMED_MUTATIONS.values(), ids=NAMED_MUTATIONS.keys())
def test_named_mutation_arguments_refuse_nul_and_surrogates(env, case):
    document, variables, field, expected = case
    before = env.rows()
    env.sql.statements.clear()
    body = json.dumps({"query": document, "variables": variables})
    response = post(env.client, body.encode(), env.token)
    assert response.status_code == 200, response.text
    result = response.json()
    assert "errors" not in result, result
    errors = result["data"][field]["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [(expected, "INVALID_VALUE")]
    assert env.sql.count == 0
    assert env.rows() == before


NAMED_QUERIES = {
    "profiles-trait": ("query($v: JSON) { profiles(trait: $v) { edges { cursor } } }", {"a\x00": "b"}, 'trait["a\\u0000"]', "profiles"),
    "profiles-trait-value": ("query($v: JSON) { profiles(trait: $v) { edges { cursor } } }", {"a": NUL}, "trait.a", "profiles"),
    "profiles-identifier-kind": ("query($v: String) { profiles(identifierKind: $v) { edges { cursor } } }", NUL, "identifierKind", "profiles"),
    "events-name": ("query($v: String) { profiles(first: 1) { edges { node { events(name: $v) { edges { cursor } } } } } }", NUL, "edges.node.events.name", "profiles"),
    "audit-action": ("query($v: String) { auditLog(action: $v) { edges { cursor } } }", NUL, "action", "auditLog"),
    "audit-object-id": ("query($v: String) { auditLog(objectId: $v) { edges { cursor } } }", SURROGATE, "objectId", "auditLog"),
    "profile-identifier": ('query($v: String!) { profile(identifier: {kind: "email", value: $v}) { id } }', NUL, "identifier.value", "profile"),
}  # fmt: skip


@pytest.mark.parametrize("case", NAMED_QUERIES.values(), ids=NAMED_QUERIES.keys())
def test_named_query_arguments_refuse_nul_and_surrogates(env, case):
    document, value, expected, field = case
    env.sql.statements.clear()
    body = json.dumps({"query": document, "variables": {"v": value}})
    response = post(env.client, body.encode(), env.token)
    assert response.status_code == 200, response.text
    errors = response.json()["errors"]
    assert [(e["extensions"]["code"], e["extensions"]["field"], e["path"]) for e in errors] == [
        ("BAD_USER_INPUT", expected, [field])
    ]
    assert env.sql.count == 0


def test_a_fragment_spread_twice_is_refused_wherever_it_is_spread(env):
    document = (
        'query($v: String) { a: profile(identifier: {kind: "email", value: "a@example.com"}) { ...E }'
        ' b: profile(identifier: {kind: "email", value: "b@example.com"}) { ...E } }'
        " fragment E on Profile { events(name: $v) { edges { cursor } } }"
    )
    body = gql(env.client, document, {"v": NUL}, token=env.token)
    assert body["data"] == {"a": None, "b": None}
    assert sorted(e["path"][0] for e in body["errors"]) == ["a", "b"]
    assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}
    assert {e["extensions"]["field"] for e in body["errors"]} == {"events.name"}
    assert env.sql.count == 0


# --- OAuth ----------------------------------------------------------------------------


def _oauth_client(client: Any, token: str) -> tuple[str, str]:
    body = gql(
        client,
        'mutation { createOAuthClient(input: {name: "crm", scopes: ["profiles:read"]})'
        " { client { clientId } clientSecret errors { code } } }",
        token=token,
    )
    payload = body["data"]["createOAuthClient"]
    return payload["client"]["clientId"], payload["clientSecret"]


def test_oauth_nul_in_the_form_is_invalid_request(client, workspace):
    client_id, secret = _oauth_client(client, workspace.api_token)
    for form in (
        {"client_id": client_id + "\x00", "client_secret": secret},
        {"client_id": client_id, "client_secret": secret + "\x00"},
    ):
        response = client.post("/oauth/token", data={"grant_type": "client_credentials", **form})
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_request"


def test_oauth_nul_in_basic_auth_is_invalid_client(client, workspace):
    client_id, secret = _oauth_client(client, workspace.api_token)
    for user in (client_id + "\x00", client_id + "%00"):
        credentials = base64.b64encode(f"{user}:{secret}".encode()).decode()
        response = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {credentials}"},
        )
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")


# --- error codes: the client's mistakes are not INTERNAL ------------------------------


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


def test_node_with_a_malformed_id_is_invalid_id(client, workspace):
    body = gql(client, '{ node(id: "abc") { id } }', token=workspace.api_token)
    assert _codes(body) == ["INVALID_ID"]
    assert body["data"] == {"node": None}


def _token_expiring(at: str) -> str:
    selection = "{ errors { code } }"
    arguments = f'input: {{name: "t", scopes: ["admin"], expiresAt: {at}}}'
    signature = "($d: DateTime)" if at == "$d" else ""
    return f"mutation{signature} {{ createApiToken({arguments}) {selection} }}"


BAD_VALUES = {
    "int-2^40": ("query($n: Int) { profiles(first: $n) { edges { cursor } } }", {"n": 2**40}),
    "int-2^40-inline": ("{ profiles(first: 1099511627776) { edges { cursor } } }", {}),
    "float-nan": ("query($f: Float!) { duplicateCandidates(minScore: $f) { score } }", {"f": float("nan")}),
    "datetime-no-offset": (_token_expiring("$d"), {"d": "2030-01-01T00:00:00"}),
    "datetime-out-of-range": (_token_expiring("$d"), {"d": "9999-12-31T23:59:59-14:00"}),
    "datetime-garbage": (_token_expiring("$d"), {"d": "not a date"}),
    "datetime-no-offset-inline": (_token_expiring('"2030-01-01T00:00:00"'), {}),
    "datetime-out-of-range-inline": (_token_expiring('"0001-01-01T00:00:00+14:00"'), {}),
    "required-variable-missing": ("query($v: String!) { auditLog(action: $v) { edges { cursor } } }", {}),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_argument_values_are_bad_user_input(env, case):
    document, variables = case
    before = env.rows()
    body = json.dumps({"query": document, "variables": variables})
    response = post(env.client, body.encode(), env.token)
    assert response.status_code == 200, response.text
    assert _codes(response.json()) == ["BAD_USER_INPUT"], response.text
    assert env.rows() == before


def test_documents_that_do_not_parse_or_validate_keep_their_codes(client, workspace):
    assert _codes(gql(client, "{ workspace {", token=workspace.api_token)) == [
        "GRAPHQL_PARSE_FAILED"
    ]
    assert _codes(gql(client, "{ nothing }", token=workspace.api_token)) == [
        "GRAPHQL_VALIDATION_FAILED"
    ]
    # An argument the field does not have is a document error, not a bad value.
    unknown = '{ profile(id: "x", colour: "red") { id } }'
    assert _codes(gql(client, unknown, token=workspace.api_token)) == ["GRAPHQL_VALIDATION_FAILED"]


def test_a_real_fault_of_ours_is_still_internal(client, workspace, monkeypatch):
    async def broken(uow: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(workspaces, "current_workspace", broken)
    body = gql(client, "{ workspace { name } }", token=workspace.api_token)
    assert _codes(body) == ["INTERNAL"]


def test_a_masked_fault_in_production_is_still_internal(database_url, workspace, monkeypatch):
    from starlette.testclient import TestClient

    from api.app import create_app
    from tests.conftest import SECRET, make_settings

    async def broken(uow: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(workspaces, "current_workspace", broken)
    settings = make_settings(database_url, env="production", secret_key=SECRET)
    with TestClient(create_app(settings, database_url=database_url)) as prod:
        masked = gql(prod, "{ workspace { name } }", token=workspace.api_token)
        refused = gql(prod, '{ node(id: "abc") { id } }', token=workspace.api_token)
    assert masked["errors"][0]["message"] == "Unexpected error."
    assert _codes(masked) == ["INTERNAL"]
    assert _codes(refused) == ["INVALID_ID"]
    assert "GlobalID" in refused["errors"][0]["message"]


# --- document limits ------------------------------------------------------------------


def test_introspection_counts_toward_the_depth_limit(client, workspace, sql_counter):
    inner = "name"
    for _ in range(30):
        inner = f"ofType {{ {inner} }}"
    body = gql(client, '{ __type(name: "Profile") { ' + inner + " } }", token=workspace.api_token)
    assert body.get("data") is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]
    assert _codes(body) == ["QUERY_TOO_DEEP"]
    assert sql_counter.count == 0


def test_graphiql_introspection_still_fits_the_depth_limit(client, workspace):
    # GraphiQL asks with graphql-js 16's query, whose type references nest 7 deep.
    document = get_introspection_query(type_depth=7, input_value_deprecation=True)
    body = gql(client, document, token=workspace.api_token)
    assert body.get("errors") is None, body["errors"]
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_fragments_that_double_at_each_step_are_measured_quickly(client, workspace, sql_counter):
    count = 40
    fragments = " ".join(
        f"fragment F{i} on Workspace {{ ...F{i + 1} ...F{i + 1} }}" for i in range(count)
    )
    document = f"{{ workspace {{ ...F0 }} }} {fragments} fragment F{count} on Workspace {{ a: id }}"
    started = time.monotonic()
    body = gql(client, document, token=workspace.api_token)
    assert time.monotonic() - started < 5
    assert body.get("data") is None
    assert "aliases" in body["errors"][0]["message"]
    assert sql_counter.count == 0


def test_a_long_chain_of_fragments_is_refused_cleanly(client, workspace):
    count = 240
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(count))
    document = f"{{ ...F0 }} {fragments} fragment F{count} on Query {{ __typename }}"
    response = post(client, json.dumps({"query": document}).encode(), workspace.api_token)
    assert response.status_code in (200, 400), response.text
    assert "INTERNAL" not in response.text
