"""Profiles over GraphQL: lookups, filters, upserts (idempotent), merges, N+1 guards."""

import base64

from tests.conftest import gql

UPSERT = """
mutation($input: [ProfileUpsertInput!]!, $key: String) {
  upsertProfiles(input: $input, idempotencyKey: $key) {
    profiles { id traits identities { kind value } }
    errors { index field code message }
  }
}"""
PROFILE_BY_IDENTIFIER = """
query($kind: String!, $value: String!) {
  profile(identifier: {kind: $kind, value: $value}) {
    id traits identities { kind value }
    traitSources { key source }
    events(first: 5) { edges { node { type name } } }
    mergeHistory { sourceProfileId targetProfileId rule }
    identityConflicts { kind value rule }
  }
}"""


def upsert(client, token, items, key=None):
    body = gql(client, UPSERT, {"input": items, "key": key}, token=token)
    assert body.get("errors") is None, body
    return body["data"]["upsertProfiles"]


def test_upsert_creates_and_updates_by_identifier(client, workspace):
    token = workspace.api_token
    first = upsert(
        client,
        token,
        [
            {
                "identifiers": [{"kind": "email", "value": "Cleo@Example.com"}],
                "traits": {"name": "Cleo"},
            }
        ],
    )
    assert first["errors"] == []
    profile = first["profiles"][0]
    assert profile["identities"] == [{"kind": "email", "value": "cleo@example.com"}]
    again = upsert(
        client,
        token,
        [
            {
                "identifiers": [
                    {"kind": "email", "value": "cleo@example.com"},
                    {"kind": "user_id", "value": "c-1"},
                ],
                "traits": {"plan": "pro"},
            }
        ],
    )
    assert again["profiles"][0]["id"] == profile["id"]
    assert again["profiles"][0]["traits"] == {"name": "Cleo", "plan": "pro"}
    found = gql(client, PROFILE_BY_IDENTIFIER, {"kind": "user_id", "value": "c-1"}, token=token)[
        "data"
    ]["profile"]
    assert found["id"] == profile["id"]
    assert {s["key"]: s["source"] for s in found["traitSources"]} == {"name": "api", "plan": "api"}


def test_bad_items_are_reported_and_good_ones_applied(client, workspace):
    result = upsert(
        client,
        workspace.api_token,
        [
            {"identifiers": [{"kind": "email", "value": "good@example.com"}]},
            {"identifiers": [{"kind": "email", "value": "not-an-email"}]},
            {"identifiers": []},
            {"identifiers": [{"kind": "user_id", "value": "u"}], "traits": ["not", "an", "object"]},
        ],
    )
    assert len(result["profiles"]) == 1
    assert [(e["index"], e["field"], e["code"]) for e in result["errors"]] == [
        (1, "identifiers[0]", "INVALID"),
        (2, "identifiers", "INVALID"),
        (3, "traits", "INVALID"),
    ]


def test_idempotency_key_replays_and_refuses_other_payloads(client, workspace):
    items = [{"identifiers": [{"kind": "user_id", "value": "idem-1"}], "traits": {"visits": 1}}]
    first = upsert(client, workspace.api_token, items, key="sync-42")
    changed = upsert(
        client,
        workspace.api_token,
        [{"identifiers": [{"kind": "user_id", "value": "idem-1"}], "traits": {"visits": 2}}],
    )
    assert changed["profiles"][0]["traits"]["visits"] == 2
    replay = upsert(client, workspace.api_token, items, key="sync-42")
    assert replay["errors"] == []
    assert replay["profiles"][0]["id"] == first["profiles"][0]["id"]
    # Not applied again: the later change stands.
    assert replay["profiles"][0]["traits"]["visits"] == 2
    other = upsert(
        client,
        workspace.api_token,
        [{"identifiers": [{"kind": "user_id", "value": "x"}]}],
        key="sync-42",
    )
    assert other["profiles"] == []
    assert other["errors"][0]["code"] == "CONFLICT"
    assert other["errors"][0]["field"] == "idempotencyKey"


PROFILE_FIELDS = """
    id traits createdAt updatedAt traitSources { key source at }
    computedTraits { firstSeen orderCount }
"""
UPSERT_FULL = (
    "mutation($input: [ProfileUpsertInput!]!) { upsertProfiles(input: $input) "
    f"{{ profiles {{ {PROFILE_FIELDS} }} errors {{ index }} }} }}"
)
NODE = f"query($id: ID!) {{ node(id: $id) {{ ... on Profile {{ {PROFILE_FIELDS} }} }} }}"


def test_upsert_answers_with_the_profiles_as_a_later_read_sees_them(client, workspace):
    # The payload is built from what the call wrote, not read back: it must
    # agree with a read for new, updated, repeated and merged profiles alike.
    token = workspace.api_token
    upsert(
        client,
        token,
        [
            {"identifiers": [{"kind": "email", "value": "ines@example.com"}], "traits": {"a": 1}},
            {"identifiers": [{"kind": "email", "value": "ola@example.com"}]},
            {"identifiers": [{"kind": "user_id", "value": "ola-1"}], "traits": {"b": 2}},
        ],
    )
    body = gql(
        client,
        UPSERT_FULL,
        {
            "input": [
                {
                    "identifiers": [{"kind": "email", "value": "ines@example.com"}],
                    "traits": {"plan": "pro", "nested": {"z": 1, "y": [1, 2.5, None]}},
                },
                {"identifiers": [{"kind": "user_id", "value": "new-1"}], "traits": {"n": "x"}},
                {"identifiers": [{"kind": "user_id", "value": "new-1"}]},
                {
                    "identifiers": [
                        {"kind": "email", "value": "ola@example.com"},
                        {"kind": "user_id", "value": "ola-1"},
                    ],
                    "traits": {"c": 3},
                },
            ]
        },
        token=token,
    )
    assert body.get("errors") is None, body
    written = body["data"]["upsertProfiles"]["profiles"]
    assert len(written) == 4
    assert written[1]["id"] == written[2]["id"]
    for profile in written:
        read = gql(client, NODE, {"id": profile["id"]}, token=token)["data"]["node"]
        assert read == profile
    assert written[3]["traits"] == {"b": 2, "c": 3}


def test_more_than_a_thousand_is_refused(client, workspace):
    items = [{"identifiers": [{"kind": "user_id", "value": f"bulk-{i}"}]} for i in range(1001)]
    result = upsert(client, workspace.api_token, items)
    assert result["profiles"] == []
    assert result["errors"][0]["field"] == "input"


def test_upsert_needs_write_scope(client, workspace):
    token = gql(
        client,
        'mutation { createApiToken(input: {name: "ro", scopes: ["profiles:read"]}) { token } }',
        token=workspace.api_token,
    )["data"]["createApiToken"]["token"]
    body = gql(
        client,
        UPSERT,
        {"input": [{"identifiers": [{"kind": "user_id", "value": "z"}]}]},
        token=token,
    )
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


MERGE = """mutation($t: ID!, $s: ID!) { mergeProfiles(targetId: $t, sourceId: $s) {
  profile { id traits identities { kind value } mergeHistory { sourceProfileId rule } } errors { code field message } } }"""


def test_merge_profiles_and_merged_away_id_resolves(client, workspace):
    token = workspace.api_token
    a = upsert(
        client,
        token,
        [
            {
                "identifiers": [{"kind": "email", "value": "dup1@example.com"}],
                "traits": {"name": "Dee"},
            }
        ],
    )["profiles"][0]
    b = upsert(
        client,
        token,
        [
            {
                "identifiers": [{"kind": "phone", "value": "+47 912 34 567"}],
                "traits": {"city": "Bergen"},
            }
        ],
    )["profiles"][0]
    merged = gql(client, MERGE, {"t": a["id"], "s": b["id"]}, token=token)["data"]["mergeProfiles"]
    assert merged["errors"] == []
    assert merged["profile"]["id"] == a["id"]
    assert merged["profile"]["traits"] == {"name": "Dee", "city": "Bergen"}
    assert {"kind": "phone", "value": "+4791234567"} in merged["profile"]["identities"]
    assert merged["profile"]["mergeHistory"] == [{"sourceProfileId": b["id"], "rule": "manual"}]
    via_old = gql(
        client, "query($id: ID!) { profile(id: $id) { id } }", {"id": b["id"]}, token=token
    )
    assert via_old["data"]["profile"]["id"] == a["id"]
    again = gql(client, MERGE, {"t": a["id"], "s": b["id"]}, token=token)["data"]["mergeProfiles"]
    assert again["errors"][0]["code"] == "CONFLICT"


def test_merge_refuses_two_user_ids(client, workspace):
    token = workspace.api_token
    a = upsert(client, token, [{"identifiers": [{"kind": "user_id", "value": "m-1"}]}])["profiles"][
        0
    ]
    b = upsert(client, token, [{"identifiers": [{"kind": "user_id", "value": "m-2"}]}])["profiles"][
        0
    ]
    result = gql(client, MERGE, {"t": a["id"], "s": b["id"]}, token=token)["data"]["mergeProfiles"]
    assert result["profile"] is None
    assert result["errors"][0]["code"] == "CONFLICT"
    assert "user_id" in result["errors"][0]["message"]


def test_unknown_and_foreign_profiles_look_the_same(client, workspace, other_workspace):
    mine = upsert(
        client, workspace.api_token, [{"identifiers": [{"kind": "user_id", "value": "iso"}]}]
    )["profiles"][0]
    missing = base64.b64encode(b"Profile:01a20000-0000-7000-8000-000000000000").decode()
    q = "query($id: ID!) { profile(id: $id) { id } node(id: $id) { id } }"
    foreign = gql(client, q, {"id": mine["id"]}, token=other_workspace.api_token)
    absent = gql(client, q, {"id": missing}, token=other_workspace.api_token)
    assert foreign == absent == {"data": {"profile": None, "node": None}}
    by_identifier = gql(
        client,
        PROFILE_BY_IDENTIFIER,
        {"kind": "user_id", "value": "iso"},
        token=other_workspace.api_token,
    )
    assert by_identifier["data"]["profile"] is None


def test_profiles_filter_by_trait_and_identifier_kind(client, workspace):
    token = workspace.api_token
    upsert(
        client,
        token,
        [
            {"identifiers": [{"kind": "user_id", "value": "f1"}], "traits": {"tier": "gold"}},
            {
                "identifiers": [{"kind": "email", "value": "f2@example.com"}],
                "traits": {"tier": "gold"},
            },
            {"identifiers": [{"kind": "user_id", "value": "f3"}], "traits": {"tier": "tin"}},
        ],
    )
    q = """query($trait: JSON, $kind: String) { profiles(first: 50, trait: $trait, identifierKind: $kind) {
      edges { node { identities { kind value } } } } }"""
    gold = gql(client, q, {"trait": {"tier": "gold"}}, token=token)["data"]["profiles"]["edges"]
    assert len(gold) == 2
    gold_users = gql(client, q, {"trait": {"tier": "gold"}, "kind": "user_id"}, token=token)[
        "data"
    ]["profiles"]["edges"]
    assert [e["node"]["identities"] for e in gold_users] == [[{"kind": "user_id", "value": "f1"}]]


PAGE = """query($first: Int!) { profiles(first: $first) { edges { node {
  id traits identities { kind value } events(first: 5) { edges { node { name timestamp } } } } } } }"""


def _seed(client, workspace, count):
    batch = []
    for i in range(count):
        user = f"page-{i}"
        batch.append(
            {"type": "identify", "userId": user, "traits": {"n": i}, "messageId": f"{user}-id"}
        )
        batch += [
            {"type": "track", "userId": user, "event": f"E{j}", "messageId": f"{user}-{j}"}
            for j in range(7)
        ]
    for start in range(0, len(batch), 400):
        response = client.post(
            "/v1/batch", json={"batch": batch[start : start + 400]}, auth=(workspace.write_key, "")
        )
        assert response.status_code == 200, response.text


def test_a_page_of_profiles_costs_a_fixed_number_of_statements(client, workspace, sql_counter):
    _seed(client, workspace, 100)
    sql_counter.statements.clear()
    small = gql(client, PAGE, {"first": 5}, token=workspace.api_token)
    small_count = sql_counter.count
    sql_counter.statements.clear()
    big = gql(client, PAGE, {"first": 100}, token=workspace.api_token)
    big_count = sql_counter.count
    assert small.get("errors") is None
    assert big.get("errors") is None
    edges = big["data"]["profiles"]["edges"]
    assert len(edges) == 100
    assert all(len(e["node"]["events"]["edges"]) == 5 for e in edges)
    assert all(len(e["node"]["identities"]) == 1 for e in edges)
    assert big_count == small_count
    assert big_count <= 6, sql_counter.statements


LOOKUP = """query($by: IdentifierInput, $id: ID, $first: Int, $name: String) {
  profile(identifier: $by, id: $id) { id traits
    events(first: $first, name: $name) { edges { node { name timestamp } } pageInfo { hasNextPage } }
  } }"""


def test_lookup_by_identifier_answers_as_the_lookup_by_id(client, workspace):
    """Including merged-away identifiers, named events and short pages."""
    _seed(client, workspace, 2)
    anon_events = [
        {"type": "track", "anonymousId": "anon-9", "event": "E0", "messageId": f"anon-9-{j}"}
        for j in range(3)
    ]
    alias = {"type": "alias", "userId": "page-1", "previousId": "anon-9", "messageId": "alias-9"}
    for batch in (anon_events, [alias]):
        response = client.post("/v1/batch", json={"batch": batch}, auth=(workspace.write_key, ""))
        assert response.status_code == 200, response.text
    for by, first, name in (
        ({"kind": "user_id", "value": "page-1"}, 3, None),
        ({"kind": "user_id", "value": "page-1"}, 20, None),
        ({"kind": "user_id", "value": "page-1"}, 2, "E0"),
        ({"kind": "anonymous_id", "value": "anon-9"}, 4, "E0"),
    ):
        variables = {"by": by, "first": first, "name": name}
        by_identifier = gql(client, LOOKUP, variables, token=workspace.api_token)
        assert by_identifier.get("errors") is None, by_identifier
        profile = by_identifier["data"]["profile"]
        by_id = gql(
            client, LOOKUP, {"id": profile["id"], "first": first, "name": name},
            token=workspace.api_token,
        )  # fmt: skip
        assert by_id["data"]["profile"] == profile
        events = profile["events"]["edges"]
        assert events, variables
        assert len(events) == min(first, 4 if name else 12)  # identify, 7 + 3 tracks, alias
        assert all(name is None or e["node"]["name"] == name for e in events)
    missing = gql(
        client, LOOKUP, {"by": {"kind": "email", "value": "nobody@example.com"}, "first": 5},
        token=workspace.api_token,
    )  # fmt: skip
    assert missing["data"]["profile"] is None


PAGED = """query($by: IdentifierInput, $id: ID, $first: Int, $after: String) {
  profile(identifier: $by, id: $id) { id
    events(first: $first, after: $after) { edges { node { name } } pageInfo { hasNextPage endCursor } }
  } }"""


def test_a_lookup_by_identifier_reads_its_page_of_events_in_the_same_round_trip(
    client, workspace, sql_counter
):
    _seed(client, workspace, 1)
    by = {"kind": "user_id", "value": "page-0"}
    after = None
    seen: list[str] = []
    for _ in range(3):
        sql_counter.statements.clear()
        page = gql(client, PAGED, {"by": by, "first": 3, "after": after}, token=workspace.api_token)
        assert page.get("errors") is None, page
        reads = [s for s in sql_counter.statements if "FROM events" in s]
        # One read of the events, through the identifier, sent with the profile's.
        assert len(reads) == 1, sql_counter.statements
        assert "FROM identities" in reads[0]
        profile = page["data"]["profile"]
        by_id = gql(
            client, PAGED, {"id": profile["id"], "first": 3, "after": after},
            token=workspace.api_token,
        )  # fmt: skip
        assert by_id["data"]["profile"] == profile
        seen += [e["node"]["name"] for e in profile["events"]["edges"]]
        after = profile["events"]["pageInfo"]["endCursor"]
    # The identify (no name) and seven tracks, each once, in pages of 3, 3 and 2.
    assert sorted(seen, key=str) == sorted([None, *(f"E{j}" for j in range(7))], key=str)
    assert profile["events"]["pageInfo"]["hasNextPage"] is False


def test_two_pages_of_events_in_one_lookup_are_each_read_as_asked(client, workspace):
    _seed(client, workspace, 1)
    query = """query { profile(identifier: {kind: "user_id", value: "page-0"}) {
      recent: events(first: 2) { edges { node { name } } }
      older: events(first: 8) { edges { node { name } } } } }"""
    profile = gql(client, query, token=workspace.api_token)["data"]["profile"]
    assert len(profile["recent"]["edges"]) == 2
    assert len(profile["older"]["edges"]) == 8
    assert profile["older"]["edges"][:2] == profile["recent"]["edges"]


def test_a_bad_page_size_is_still_told_by_the_events_field(client, workspace):
    _seed(client, workspace, 1)
    query = """query { profile(identifier: {kind: "user_id", value: "page-0"}) {
      id events(first: 500) { edges { node { name } } } } }"""
    answer = gql(client, query, token=workspace.api_token)
    assert answer["errors"][0]["path"] == ["profile", "events"]
    assert "first must be between" in answer["errors"][0]["message"]


# A literal page size: a variable would be costed at the largest page.
EVERY_FIELD = """query { profiles(first: FIRST) { edges { node {
  id traits createdAt updatedAt identities { kind value }
  events(first: 3) { edges { node { name timestamp properties } } pageInfo { hasNextPage } }
  named: events(first: 2, name: "E1") { edges { node { name } } }
  traitSources { key source at }
  computedTraits { firstSeen lastSeen orderCount }
  mergeHistory { sourceProfileId rule }
  identityConflicts { kind value rule }
  consents { status }
  consentAt(purpose: "newsletter", channel: "email", at: "2030-01-01T00:00:00Z") { status }
  contactable(channel: "email", purpose: "newsletter") { allowed reason }
  unsubscribeUrl(channel: "email", purpose: "newsletter")
  preferenceCentreUrl
} } } }"""


def test_every_field_of_a_page_of_profiles_costs_the_same_statements_whatever_its_size(
    client, workspace, sql_counter
):
    _seed(client, workspace, 12)
    counts = []
    for first in (2, 12):
        sql_counter.statements.clear()
        query = EVERY_FIELD.replace("FIRST", str(first))
        body = gql(client, query, token=workspace.api_token)
        assert body.get("errors") is None, body
        assert len(body["data"]["profiles"]["edges"]) == first
        counts.append(sql_counter.count)
    assert counts[0] == counts[1], sql_counter.statements
