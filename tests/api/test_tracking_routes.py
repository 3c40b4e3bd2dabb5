"""The Segment HTTP tracking API: auth, limits, errors that name the field, nothing half-stored."""

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

SINGLE_ROUTES = {
    "identify": {"userId": "u1", "traits": {"email": "u1@example.com"}},
    "track": {"userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}},
    "page": {"anonymousId": "a1", "name": "Home"},
    "screen": {"userId": "u1", "name": "Settings"},
    "group": {"userId": "u1", "groupId": "acme", "traits": {"name": "Acme"}},
    "alias": {"userId": "u1", "previousId": "a1"},
}


def track(**extra):
    return {"userId": "u1", "event": "Clicked", "messageId": str(uuid.uuid4()), **extra}


def in_batch(*messages, **envelope):
    return {"batch": [{"type": "track", **m} for m in messages], **envelope}


def basic(key, password=""):
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{password}".encode()).decode()}


def post(client, path, body, key=None, headers=None):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        all_headers.update(basic(key))
    return client.post(path, content=data, headers=all_headers)


def assert_rejected(response, status, *fragments):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    for fragment in fragments:
        assert fragment in body["error"], body
    assert "Traceback" not in response.text
    return body


def count_events(database_url, workspace_id, message_id=None):
    query = "SELECT count(*) FROM events WHERE workspace_id = %s"
    params: tuple = (workspace_id,)
    if message_id is not None:
        query += " AND message_id = %s"
        params = (workspace_id, message_id)
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchone()[0]


# --- authentication ---------------------------------------------------------------


def test_missing_key_is_401(client):
    response = post(client, "/v1/track", track())
    body = assert_rejected(response, 401, "write key is required")
    assert response.headers["www-authenticate"].startswith("Basic")
    # The official SDKs read `code` and `message` to report a failure.
    assert (body["code"], body["message"]) == ("unauthorized", body["error"])


@pytest.mark.parametrize(
    "key",
    [
        "nonsense",
        "cdp_wk_" + "0" * 32 + "_guess",
        "cdp_at_" + "0" * 32 + "_an-api-token-shape",
    ],
)
@pytest.mark.parametrize("where", ["basic", "body"])
def test_bad_key_is_401(client, key, where):
    if where == "basic":
        response = post(client, "/v1/track", track(), key=key)
    else:
        response = post(client, "/v1/track", {**track(), "writeKey": key})
    assert_rejected(response, 401, "invalid write key")


def test_api_token_is_not_a_write_key(client, workspace):
    assert_rejected(post(client, "/v1/track", track(), key=workspace.api_token), 401)


def test_key_of_one_workspace_with_another_workspace_prefix(client, workspace, other_workspace):
    secret = workspace.write_key.rsplit("_", 1)[1]
    forged = f"cdp_wk_{other_workspace.workspace.id.hex}_{secret}"
    assert_rejected(post(client, "/v1/track", track(), key=forged), 401)


def test_a_refused_key_claims_nothing(client, workspace, database_url):
    """The key check heads ingest's first round trip and stops what is queued behind it."""
    message = track(messageId="claimed-by-nobody")
    secret = workspace.write_key.rsplit("_", 1)[1]
    revoked_shape = f"cdp_wk_{workspace.workspace.id.hex}_{secret}x"
    assert_rejected(post(client, "/v1/batch", in_batch(message), key=revoked_shape), 401)
    assert count_events(database_url, workspace.workspace.id, "claimed-by-nobody") == 0
    assert post(client, "/v1/batch", in_batch(message), key=workspace.write_key).status_code == 200
    assert count_events(database_url, workspace.workspace.id, "claimed-by-nobody") == 1


def test_malformed_basic_header_is_401(client):
    response = post(client, "/v1/track", track(), headers={"Authorization": "Basic %%%"})
    assert_rejected(response, 401, "malformed")


def test_bad_key_is_told_before_bad_input(client):
    response = post(client, "/v1/batch", in_batch({"event": "no ids"}), key="nonsense")
    assert_rejected(response, 401)


# --- success ----------------------------------------------------------------------


def test_basic_auth_is_accepted(client, workspace):
    response = post(client, "/v1/track", track(), key=workspace.write_key)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}


def test_write_key_in_body_is_accepted(client, workspace):
    response = post(client, "/v1/track", {**track(), "writeKey": workspace.write_key})
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}


def test_write_key_in_batch_envelope_is_accepted(client, workspace):
    response = post(client, "/v1/batch", in_batch(track(), writeKey=workspace.write_key))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("kind", sorted(SINGLE_ROUTES))
def test_every_single_call_route(client, workspace, kind):
    response = post(client, f"/v1/{kind}", SINGLE_ROUTES[kind], key=workspace.write_key)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/import"])
def test_batch_of_every_type(client, workspace, path):
    body = {"batch": [{"type": kind, **fields} for kind, fields in SINGLE_ROUTES.items()]}
    response = post(client, path, body, key=workspace.write_key)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}


def test_gzip_body_is_accepted(client, workspace, database_url):
    message = track()
    response = post(
        client,
        "/v1/batch",
        gzip.compress(orjson.dumps(in_batch(message))),
        key=workspace.write_key,
        headers={"Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert count_events(database_url, workspace.workspace.id, message["messageId"]) == 1


def test_repeated_message_id_is_accepted_and_stored_once(client, workspace, database_url):
    message = track()
    for _ in range(2):
        response = post(client, "/v1/track", message, key=workspace.write_key)
        assert response.status_code == 200, response.text
    assert count_events(database_url, workspace.workspace.id, message["messageId"]) == 1


def test_timestamp_is_corrected_for_clock_skew(client, workspace, database_url):
    # The client's clock is a day fast; the event happened 30 s before it was sent.
    client_now = datetime.now(UTC) + timedelta(days=1)
    message = track(
        timestamp=(client_now - timedelta(seconds=30)).isoformat(),
        sentAt=client_now.isoformat(),
    )
    before = datetime.now(UTC)
    response = post(client, "/v1/track", message, key=workspace.write_key)
    after = datetime.now(UTC)
    assert response.status_code == 200, response.text
    with psycopg.connect(database_url) as conn:
        (stored,) = conn.execute(
            "SELECT timestamp FROM events WHERE workspace_id = %s AND message_id = %s",
            (workspace.workspace.id, message["messageId"]),
        ).fetchone()
    assert before - timedelta(seconds=31) <= stored <= after - timedelta(seconds=29)


# --- malformed input --------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"userId": "u1",}'])
def test_malformed_json_is_400(client, workspace, raw):
    body = assert_rejected(
        post(client, "/v1/track", raw, key=workspace.write_key), 400, "not valid JSON"
    )
    assert body["errors"][0]["field"] == "(body)"


@pytest.mark.parametrize("raw", [b"[]", b'"track"', b"42"])
def test_body_must_be_an_object(client, workspace, raw):
    response = post(client, "/v1/batch", raw, key=workspace.write_key)
    assert_rejected(response, 400, "must be a JSON object")


def test_missing_ids_in_a_single_call(client, workspace):
    response = post(client, "/v1/identify", {"traits": {"a": 1}}, key=workspace.write_key)
    body = assert_rejected(response, 400, "userId: userId or anonymousId is required")
    assert body["errors"] == [
        {"index": None, "field": "userId", "message": "userId or anonymousId is required"}
    ]


def test_missing_ids_in_a_batch_name_the_index(client, workspace):
    body = in_batch(track(), {"event": "no ids"})
    response = post(client, "/v1/batch", body, key=workspace.write_key)
    payload = assert_rejected(response, 400, "batch[1].userId: userId or anonymousId is required")
    assert payload["errors"] == [
        {"index": 1, "field": "userId", "message": "userId or anonymousId is required"}
    ]


def test_bad_timestamp_names_index_and_field(client, workspace):
    body = in_batch(track(timestamp="yesterday"), track(), track(sentAt="2024-02-30T00:00:00Z"))
    response = post(client, "/v1/batch", body, key=workspace.write_key)
    payload = assert_rejected(response, 400, "batch[0].timestamp", "batch[2].sentAt")
    assert [(e["index"], e["field"]) for e in payload["errors"]] == [
        (0, "timestamp"),
        (2, "sentAt"),
    ]


def test_event_over_32_kb_in_a_batch_names_its_index(client, workspace):
    big = track(properties={"blob": "x" * (33 * 1024)})
    response = post(client, "/v1/batch", in_batch(track(), big), key=workspace.write_key)
    payload = assert_rejected(response, 400, "batch[1].(message)", "32 KB")
    assert payload["errors"][0]["index"] == 1


def test_single_call_over_32_kb_is_400(client, workspace):
    big = track(properties={"blob": "x" * (33 * 1024)})
    assert_rejected(post(client, "/v1/track", big, key=workspace.write_key), 400, "32 KB")


def test_batch_over_500_kb_is_refused(client, workspace):
    messages = [track(properties={"blob": "x" * (30 * 1024)}) for _ in range(18)]
    response = post(client, "/v1/batch", in_batch(*messages), key=workspace.write_key)
    assert response.status_code in {400, 413}
    assert_rejected(response, response.status_code, "500 KB")


def test_gzip_bomb_is_refused(client, workspace):
    padded = orjson.dumps(in_batch(track()))[:-1] + b" " * (600 * 1024) + b"}"
    response = post(
        client,
        "/v1/batch",
        gzip.compress(padded),
        key=workspace.write_key,
        headers={"Content-Encoding": "gzip"},
    )
    assert_rejected(response, 413, "500 KB")


def test_single_call_gzip_is_held_to_32_kb(client, workspace):
    big = orjson.dumps(track(properties={"blob": "x" * (40 * 1024)}))
    response = post(
        client,
        "/v1/track",
        gzip.compress(big),
        key=workspace.write_key,
        headers={"Content-Encoding": "gzip"},
    )
    assert_rejected(response, 400, "32 KB")


def test_invalid_gzip_is_400(client, workspace):
    response = post(
        client,
        "/v1/track",
        b"not gzip at all",
        key=workspace.write_key,
        headers={"Content-Encoding": "gzip"},
    )
    assert_rejected(response, 400, "gzip")


def test_unknown_encoding_is_refused(client, workspace):
    response = post(
        client, "/v1/track", track(), key=workspace.write_key, headers={"Content-Encoding": "br"}
    )
    assert_rejected(response, 415, "Content-Encoding")


def test_only_post(client):
    assert client.get("/v1/track").status_code == 405


# --- nothing half-stored ----------------------------------------------------------


def test_rejected_batch_stores_nothing(client, workspace, database_url):
    good = track()
    body = in_batch(good, {"event": "no ids"})
    response = post(client, "/v1/batch", body, key=workspace.write_key)
    assert_rejected(response, 400, "batch[1].userId")
    assert count_events(database_url, workspace.workspace.id) == 0
    # The same good message alone is stored, so the count above could have seen it.
    assert post(client, "/v1/batch", in_batch(good), key=workspace.write_key).status_code == 200
    assert count_events(database_url, workspace.workspace.id) == 1


# --- what PostgreSQL would refuse -------------------------------------------------


def test_a_nul_in_a_batchs_context_is_a_400_that_stores_nothing(client, workspace, database_url):
    body = in_batch(track(), context={"ip": "1.2.3.4\x00"})
    assert_rejected(post(client, "/v1/batch", body, workspace.write_key), 400, "context", "NUL")
    assert count_events(database_url, workspace.workspace.id) == 0


def test_properties_nested_300_deep_are_a_400(client, workspace, database_url):
    nested: dict = {"leaf": 1}
    for _ in range(300):
        nested = {"x": nested}
    # orjson writes at most 255 levels: the standard library writes the body.
    body = json.dumps(track(properties=nested)).encode()
    response = post(client, "/v1/track", body, workspace.write_key)
    assert_rejected(response, 400, "nests deeper than 64 levels")
    assert count_events(database_url, workspace.workspace.id) == 0
