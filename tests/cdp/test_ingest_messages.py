"""The Segment-spec parser: validation, clock-skew correction, limits."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cdp.ingest_messages import (
    MAX_MESSAGE_BYTES,
    MessageInputError,
    parse_batch,
    parse_single,
)
from domain.errors import FieldError

RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def single(body, kind="track"):
    return parse_single(body, kind, received_at=RECEIVED)


def single_errors(body, kind="track"):
    with pytest.raises(MessageInputError) as caught:
        single(body, kind)
    return caught.value.errors


def batch_errors(body):
    with pytest.raises(MessageInputError) as caught:
        parse_batch(body, received_at=RECEIVED)
    return caught.value.errors


def fields(errors):
    return [(error.index, error.field) for error in errors]


# --- identities -------------------------------------------------------------


def test_track_with_user_id():
    message = single({"userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}})
    assert message.type == "track"
    assert message.user_id == "u1"
    assert message.anonymous_id is None
    assert message.name == "Signed Up"
    assert message.properties == {"plan": "pro"}
    assert message.received_at == RECEIVED


def test_anonymous_id_alone_is_enough():
    message = single({"anonymousId": "a1"}, "page")
    assert (message.user_id, message.anonymous_id) == (None, "a1")


@pytest.mark.parametrize("kind", ["identify", "track", "page", "screen", "group"])
def test_every_call_but_alias_needs_user_or_anonymous_id(kind):
    body = {"event": "x", "groupId": "g", "traits": {}}
    assert single_errors(body, kind) == [
        FieldError(None, "userId", "userId or anonymousId is required")
    ]


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_blank_ids_count_as_missing(blank):
    errors = single_errors({"userId": blank, "anonymousId": blank}, "identify")
    assert fields(errors) == [(None, "userId")]


def test_numeric_ids_become_strings():
    message = single({"userId": 42, "anonymousId": 7.0, "event": "e"})
    assert (message.user_id, message.anonymous_id) == ("42", "7")
    assert single({"userId": 1.5, "event": "e"}).user_id == "1.5"


@pytest.mark.parametrize("bad", [True, {"id": 1}, ["u"]])
def test_ids_of_other_types_are_errors(bad):
    errors = single_errors({"userId": bad, "event": "e"})
    assert errors == [FieldError(None, "userId", "userId must be a string")]


def test_overlong_id_is_an_error():
    errors = single_errors({"userId": "u" * 513, "event": "e"})
    assert fields(errors) == [(None, "userId")]


def test_alias_needs_user_id_and_previous_id():
    message = single({"userId": "u1", "previousId": "a1"}, "alias")
    assert (message.type, message.user_id, message.previous_id) == ("alias", "u1", "a1")
    errors = single_errors({"anonymousId": "a1"}, "alias")
    assert fields(errors) == [(None, "userId"), (None, "previousId")]


def test_previous_id_is_kept_only_for_alias():
    assert single({"userId": "u", "previousId": "p", "event": "e"}).previous_id is None


# --- per-type rules ----------------------------------------------------------


@pytest.mark.parametrize("event", [None, "", "  ", 5, {"name": "x"}])
def test_track_needs_a_non_empty_event(event):
    errors = single_errors({"userId": "u", "event": event})
    assert errors == [FieldError(None, "event", "event must be a non-empty string")]


def test_group_needs_group_id_and_keeps_traits():
    message = single({"userId": "u", "groupId": 99, "traits": {"name": "Acme"}}, "group")
    assert (message.group_id, message.traits) == ("99", {"name": "Acme"})
    assert fields(single_errors({"userId": "u"}, "group")) == [(None, "groupId")]


def test_identify_keeps_traits_and_context():
    context = {
        "ip": "203.0.113.9",
        "userAgent": "Mozilla/5.0",
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "campaign": {"source": "newsletter"},
        "page": {"url": "https://example.com/"},
        "traits": {"email": "a@example.com"},
    }
    body = {"userId": "u", "traits": {"email": "a@example.com"}, "context": context}
    message = single(body, "identify")
    assert message.traits == {"email": "a@example.com"}
    assert message.context == context


def test_traits_are_ignored_where_the_spec_has_none():
    message = single({"userId": "u", "event": "e", "traits": "nonsense"})
    assert message.traits == {}


@pytest.mark.parametrize(
    ("kind", "name"),
    [("identify", "traits"), ("group", "traits"), ("track", "properties"), ("page", "context")],
)
def test_objects_must_be_objects(kind, name):
    body = {"userId": "u", "event": "e", "groupId": "g", name: ["not", "an", "object"]}
    assert single_errors(body, kind) == [FieldError(None, name, f"{name} must be a JSON object")]


@pytest.mark.parametrize("kind", ["page", "screen"])
def test_page_and_screen_names(kind):
    assert single({"userId": "u", "name": "Home"}, kind).name == "Home"
    assert single({"userId": "u", "properties": {"name": "Pricing"}}, kind).name == "Pricing"
    assert single({"userId": "u"}, kind).name is None
    assert fields(single_errors({"userId": "u", "name": 3}, kind)) == [(None, "name")]


def test_page_category_is_kept_in_properties():
    message = single({"userId": "u", "name": "Shoes", "category": "Shop"}, "page")
    assert message.properties == {"category": "Shop"}
    message = single({"userId": "u", "category": "Shop", "properties": {"category": "Own"}}, "page")
    assert message.properties == {"category": "Own"}


def test_route_fixes_the_type_of_a_single_call():
    message = single({"type": "identify", "userId": "u", "event": "e"}, "track")
    assert message.type == "track"


# --- message ids -------------------------------------------------------------


def test_message_id_is_kept():
    assert single({"userId": "u", "event": "e", "messageId": "m-1"}).message_id == "m-1"


def test_missing_message_id_is_generated():
    first = single({"userId": "u", "event": "e"}).message_id
    second = single({"userId": "u", "event": "e", "messageId": ""}).message_id
    assert uuid.UUID(first).version == 4
    assert first != second


@pytest.mark.parametrize("bad", [12, ["m"], "m" * 513])
def test_bad_message_id(bad):
    assert fields(single_errors({"userId": "u", "event": "e", "messageId": bad})) == [
        (None, "messageId")
    ]


# --- timestamps --------------------------------------------------------------


def test_without_any_timestamp_the_receipt_time_is_used():
    assert single({"userId": "u", "event": "e"}).timestamp == RECEIVED


def test_without_sent_at_the_client_timestamp_is_used_as_is():
    message = single({"userId": "u", "event": "e", "timestamp": "2024-04-30T10:00:00+02:00"})
    assert message.timestamp == datetime(2024, 4, 30, 8, 0, tzinfo=UTC)
    assert message.timestamp.tzinfo is UTC


def test_naive_timestamps_are_utc():
    message = single({"userId": "u", "event": "e", "timestamp": "2024-04-30T10:00:00"})
    assert message.timestamp == datetime(2024, 4, 30, 10, 0, tzinfo=UTC)


def test_clock_skew_is_corrected_with_sent_at():
    # The client's clock is 1 h 5 min fast; the event happened 30 s before it was sent.
    body = {
        "userId": "u",
        "event": "e",
        "timestamp": "2024-05-01T13:04:30Z",
        "sentAt": "2024-05-01T13:05:00Z",
    }
    assert single(body).timestamp == RECEIVED - timedelta(seconds=30)


def test_original_timestamp_wins_over_timestamp_when_correcting():
    body = {
        "userId": "u",
        "event": "e",
        "timestamp": "2000-01-01T00:00:00Z",
        "originalTimestamp": "2024-05-01T09:59:50-02:00",  # 11:59:50 UTC
        "sentAt": "2024-05-01T12:00:00Z",
    }
    assert single(body).timestamp == datetime(2024, 5, 1, 11, 59, 50, tzinfo=UTC)


def test_sent_at_without_event_time_means_received_at():
    body = {"userId": "u", "event": "e", "sentAt": "2024-05-01T00:00:00Z"}
    assert single(body).timestamp == RECEIVED


def test_batch_sent_at_applies_to_its_messages_unless_they_carry_their_own():
    body = {
        "sentAt": "2024-05-01T12:10:00Z",  # the client is 10 minutes fast
        "batch": [
            {"type": "track", "userId": "u", "event": "e", "timestamp": "2024-05-01T12:09:00Z"},
            {
                "type": "track",
                "userId": "u",
                "event": "e",
                "timestamp": "2024-05-01T12:09:00Z",
                "sentAt": "2024-05-01T12:09:30Z",
            },
        ],
    }
    first, second = parse_batch(body, received_at=RECEIVED)
    assert first.timestamp == datetime(2024, 5, 1, 11, 59, tzinfo=UTC)
    assert second.timestamp == datetime(2024, 5, 1, 11, 59, 30, tzinfo=UTC)


def test_received_at_in_another_zone_gives_utc():
    paris = timezone(timedelta(hours=2))
    message = parse_single(
        {"userId": "u", "event": "e"}, "track", received_at=RECEIVED.astimezone(paris)
    )
    assert message.timestamp == RECEIVED
    assert message.timestamp.utcoffset() == timedelta(0)
    assert message.received_at.tzinfo is UTC


@pytest.mark.parametrize("name", ["timestamp", "sentAt", "originalTimestamp"])
@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01T00:00:00Z", "", 1714564800])
def test_bad_timestamps_name_their_field(name, bad):
    errors = single_errors({"userId": "u", "event": "e", name: bad})
    assert fields(errors) == [(None, name)]


def test_correction_out_of_range_is_an_error():
    body = {
        "userId": "u",
        "event": "e",
        "timestamp": "0001-01-01T00:00:00Z",
        "sentAt": "9999-01-01T00:00:00Z",
    }
    assert fields(single_errors(body)) == [(None, "timestamp")]


# --- size --------------------------------------------------------------------


def test_message_over_32_kb_is_an_error():
    body = {"userId": "u", "event": "e", "properties": {"blob": "x" * MAX_MESSAGE_BYTES}}
    assert single_errors(body) == [FieldError(None, "(message)", "message is larger than 32 KB")]


def test_message_just_under_32_kb_is_accepted():
    body = {"userId": "u", "event": "e", "properties": {"blob": ""}}
    overhead = len(b'{"userId":"u","event":"e","properties":{"blob":""}}')
    body["properties"]["blob"] = "x" * (MAX_MESSAGE_BYTES - overhead)
    assert single(body).properties["blob"]


def test_nul_characters_are_refused():
    errors = single_errors({"userId": "u", "event": "e", "properties": {"k": ["a\x00b"]}})
    assert fields(errors) == [(None, "properties")]
    # An escaped backslash followed by u0000 is not a NUL.
    assert single({"userId": "u", "event": "e", "properties": {"k": "\\u0000"}})


def test_a_nul_in_a_batchs_shared_context_is_refused():
    errors = batch_errors(
        {
            "context": {"ip": "1.2.3.4\x00"},
            "batch": [{"type": "track", "userId": "u", "event": "e"}],
        }
    )
    assert fields(errors) == [(None, "context")]


def _nested(depth):
    value = 1
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize("depth", [64, 256, 600, 1023])
def test_a_message_nested_deeper_than_64_levels_is_refused(depth):
    errors = single_errors({"userId": "u", "event": "e", "properties": _nested(depth)})
    assert errors == [FieldError(None, "(message)", "message nests deeper than 64 levels")]


def test_a_message_nested_64_levels_deep_is_kept():
    # The message is level 1 and the properties object level 2: 63 objects reach 64.
    assert single({"userId": "u", "event": "e", "properties": _nested(63)}).properties


def test_many_brackets_that_do_not_nest_are_kept():
    wide = {f"k{i}": {"v": [i]} for i in range(100)}
    assert single({"userId": "u", "event": "e", "properties": wide}).properties


# --- batches -----------------------------------------------------------------


def test_batch_of_every_type():
    body = {
        "batch": [
            {"type": "identify", "userId": "u", "traits": {"plan": "pro"}},
            {"type": "track", "anonymousId": "a", "event": "Clicked"},
            {"type": "page", "userId": "u", "name": "Home"},
            {"type": "screen", "userId": "u", "name": "Settings"},
            {"type": "group", "userId": "u", "groupId": "g"},
            {"type": "alias", "userId": "u", "previousId": "a"},
        ],
        "writeKey": "ignored here",
    }
    messages = parse_batch(body, received_at=RECEIVED)
    assert [m.type for m in messages] == ["identify", "track", "page", "screen", "group", "alias"]
    assert messages[0].traits == {"plan": "pro"}
    assert len({m.message_id for m in messages}) == 6


def test_empty_batch_is_empty():
    assert parse_batch({"batch": []}, received_at=RECEIVED) == []


@pytest.mark.parametrize("bad", [None, {}, "x"])
def test_batch_must_be_a_list(bad):
    body = {} if bad is None else {"batch": bad}
    assert batch_errors(body) == [FieldError(None, "batch", "batch must be a list of messages")]


def test_batch_reports_every_error_with_its_index():
    body = {
        "batch": [
            {"type": "track", "userId": "u", "event": "ok"},
            {"type": "track", "event": "no ids"},
            "not an object",
            {"type": "explode", "userId": "u"},
            {"type": "track", "userId": "u", "event": "", "timestamp": "soon"},
            {"type": "identify", "userId": "u", "traits": [1]},
            {"userId": "u", "event": "no type"},
        ]
    }
    errors = batch_errors(body)
    assert fields(errors) == [
        (1, "userId"),
        (2, "(message)"),
        (3, "type"),
        (4, "timestamp"),
        (4, "event"),
        (5, "traits"),
        (6, "type"),
    ]
    assert errors[0].describe() == "batch[1].userId: userId or anonymousId is required"
    assert str(MessageInputError(errors)).startswith(
        "batch[1].userId: userId or anonymousId is required; batch[2].(message): "
    )


def test_oversized_message_in_batch_names_its_index():
    big = {"type": "track", "userId": "u", "event": "e", "properties": {"x": "y" * 33_000}}
    body = {"batch": [{"type": "track", "userId": "u", "event": "e"}, big]}
    assert batch_errors(body) == [FieldError(1, "(message)", "message is larger than 32 KB")]


def test_batch_envelope_context_is_a_default_for_each_message():
    body = {
        "context": {"library": {"name": "analytics-python"}, "locale": "en-GB"},
        "batch": [
            {"type": "track", "userId": "u", "event": "e", "context": {"locale": "fr-FR"}},
        ],
    }
    (message,) = parse_batch(body, received_at=RECEIVED)
    assert message.context == {"library": {"name": "analytics-python"}, "locale": "fr-FR"}


def test_bad_batch_envelope_fields():
    errors = batch_errors({"sentAt": "later", "context": 3, "batch": []})
    assert fields(errors) == [(None, "sentAt"), (None, "context")]
    assert errors[0].describe() == "sentAt: sentAt is not a valid ISO-8601 timestamp"
