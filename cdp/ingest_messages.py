"""Parsing Segment tracking-API JSON into validated messages: no I/O.

Every problem in a request is collected before anything is returned, so a
client learns all of them at once, and a batch with one bad message is
rejected whole.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cdp.identifiers import MAX_VALUE_LENGTH
from cdp.model import MESSAGE_TYPES, Message, MessageType
from domain.errors import FieldError

MAX_MESSAGE_BYTES = 32 * 1024
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)
MAX_BATCH_BYTES = 500 * 1024
MESSAGE_FIELD = "(message)"
# The deepest nesting a message may have, as in GraphQL inputs: what is stored
# must stay writable by every reader and export (orjson writes at most 255).
MAX_DEPTH = 64
# Ids and message ids are keys, and event names are what events get looked up
# by; a B-tree entry is limited to about 2.7 KB, so a longer value must be
# refused here rather than fail in the database.
MAX_KEY_LENGTH = MAX_VALUE_LENGTH

_TYPES_TEXT = ", ".join(MESSAGE_TYPES)
_ID_FIELDS = ("userId", "anonymousId", "previousId", "groupId")
_USER_FIELDS = frozenset({"userId", "anonymousId"})
_TRAIT_TYPES: frozenset[str] = frozenset({"identify", "group"})
_NAMED_TYPES: frozenset[str] = frozenset({"page", "screen"})


class MessageInputError(ValueError):
    """The request is invalid; `errors` lists every problem found."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(error.describe() for error in errors))
        self.errors = errors


@dataclass
class _Problems:
    """The errors found so far, and the index of the message being read."""

    found: list[FieldError] = field(default_factory=list)
    index: int | None = None

    def add(self, where: str, message: str) -> None:
        self.found.append(FieldError(self.index, where, message))


@dataclass(frozen=True)
class _Envelope:
    """What a batch carries for all its messages."""

    sent_at: datetime | None = None
    context: dict[str, Any] = field(default_factory=dict)


def parse_single(body: dict[str, Any], type: MessageType, *, received_at: datetime) -> Message:  # noqa: A002 - the spec's name
    """One call to /v1/<type>: the route fixes the type, whatever the body says."""
    problems = _Problems()
    message = _message(body, type, _Envelope(), _utc(received_at), problems)
    if problems.found or message is None:
        raise MessageInputError(problems.found)
    return message


def parse_batch(body: dict[str, Any], *, received_at: datetime) -> list[Message]:
    """A /v1/batch body: all its messages, or a MessageInputError naming each bad one."""
    problems = _Problems()
    envelope = _envelope(body, problems)
    items = body.get("batch")
    if not isinstance(items, list):
        problems.add("batch", "batch must be a list of messages")
        raise MessageInputError(problems.found)
    received_at = _utc(received_at)
    messages: list[Message] = []
    for index, item in enumerate(items):
        problems.index = index
        if not isinstance(item, dict):
            problems.add(MESSAGE_FIELD, "message must be a JSON object")
            continue
        message = _message(item, _batch_type(item, problems), envelope, received_at, problems)
        if message is not None:
            messages.append(message)
    if problems.found:
        raise MessageInputError(problems.found)
    return messages


def _envelope(body: dict[str, Any], problems: _Problems) -> _Envelope:
    sent_at = _instant(body, "sentAt", problems)
    context = _object(body, "context", problems)
    # Merged into every message's context, so checked as they are.
    _check_encodable({"context": context}, problems)
    return _Envelope(sent_at, context)


def _batch_type(item: dict[str, Any], problems: _Problems) -> MessageType | None:
    value = item.get("type")
    for kind in MESSAGE_TYPES:
        if value == kind:
            return kind
    problems.add("type", f"type must be one of {_TYPES_TEXT}")
    return None


def _message(
    item: dict[str, Any],
    kind: MessageType | None,
    envelope: _Envelope,
    received_at: datetime,
    problems: _Problems,
) -> Message | None:
    """Check one message; None when it has problems (they are in `problems`)."""
    before = len(problems.found)
    _check_size(item, problems)
    message_id = _message_id(item, problems)
    timestamp = _timestamp(item, envelope.sent_at, received_at, problems)
    context = {**envelope.context, **_object(item, "context", problems)}
    properties = _object(item, "properties", problems)
    traits = _object(item, "traits", problems) if kind in _TRAIT_TYPES else {}
    ids = {name: _id(item, name, problems) for name in _ID_FIELDS}
    if kind is None:
        return None
    _require_ids(kind, ids, problems)
    name = _name(item, kind, properties, problems)
    if len(problems.found) > before:
        return None
    return Message(
        type=kind,
        message_id=message_id or str(uuid.uuid4()),
        timestamp=timestamp,
        received_at=received_at,
        user_id=ids["userId"],
        anonymous_id=ids["anonymousId"],
        previous_id=ids["previousId"] if kind == "alias" else None,
        group_id=ids["groupId"] if kind == "group" else None,
        name=name,
        traits=traits,
        properties=_with_category(item, kind, properties),
        context=context,
    )


def _check_size(item: dict[str, Any], problems: _Problems) -> None:
    encoded = _check_encodable(item, problems)
    if encoded is not None and len(encoded) > MAX_MESSAGE_BYTES:
        problems.add(MESSAGE_FIELD, "message is larger than 32 KB")


def _check_encodable(item: dict[str, Any], problems: _Problems) -> bytes | None:
    """`item` as JSON, with a problem for each part PostgreSQL's jsonb would refuse."""
    try:
        encoded = orjson.dumps(item)
    except orjson.JSONEncodeError:
        # The body parser takes deeper nesting than the encoder writes.
        encoded = None
    # Fewer brackets than the limit cannot nest past it: the walk is for the rare rest.
    if encoded is None or (
        encoded.count(b"{") + encoded.count(b"[") > MAX_DEPTH and _deeper_than(item, MAX_DEPTH)
    ):
        problems.add(MESSAGE_FIELD, f"message nests deeper than {MAX_DEPTH} levels")
        return None
    # PostgreSQL's text and jsonb refuse NUL; the quick test can be fooled by an
    # escaped backslash, so the slow walk decides.
    if b"\\u0000" in encoded:
        for key, value in item.items():
            if "\x00" in key:
                problems.add(MESSAGE_FIELD, "a field name contains a NUL character")
            elif _has_nul(value):
                problems.add(key, f"{key} must not contain NUL characters")
    return encoded


def _deeper_than(value: dict[str, Any], limit: int) -> bool:
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        children = current.values() if isinstance(current, dict) else current
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _has_nul(inner) for key, inner in value.items())
    if isinstance(value, list):
        return any(_has_nul(inner) for inner in value)
    return False


def _message_id(item: dict[str, Any], problems: _Problems) -> str | None:
    value = item.get("messageId")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.add("messageId", "messageId must be a string")
        return None
    if len(value) > MAX_KEY_LENGTH:
        problems.add("messageId", f"messageId must be at most {MAX_KEY_LENGTH} characters")
        return None
    return value


def _id(item: dict[str, Any], name: str, problems: _Problems) -> str | None:
    """A string id; Segment accepts numbers and converts them. Blank means absent."""
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.add(name, f"{name} must be a string")
        return None
    text = value if isinstance(value, str) else _number_text(value)
    if not text.strip():
        return None
    if len(text) > MAX_KEY_LENGTH:
        problems.add(name, f"{name} must be at most {MAX_KEY_LENGTH} characters")
        return None
    return text


def _number_text(value: float) -> str:
    # JavaScript clients send 42 and mean "42", never "42.0".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _require_ids(kind: MessageType, ids: dict[str, str | None], problems: _Problems) -> None:
    reported = {error.field for error in problems.found if error.index == problems.index}
    if kind == "alias":
        for name in ("userId", "previousId"):
            if ids[name] is None and name not in reported:
                problems.add(name, f"{name} is required for alias")
    elif ids["userId"] is None and ids["anonymousId"] is None and not reported & _USER_FIELDS:
        problems.add("userId", "userId or anonymousId is required")
    if kind == "group" and ids["groupId"] is None and "groupId" not in reported:
        problems.add("groupId", "groupId is required for group")


def _name(
    item: dict[str, Any], kind: MessageType, properties: dict[str, Any], problems: _Problems
) -> str | None:
    if kind == "track":
        return _event(item, problems)
    if kind not in _NAMED_TYPES:
        return None
    value = item.get("name")
    if value is None:
        fallback = properties.get("name")
        value = fallback if isinstance(fallback, str) else None
    elif not isinstance(value, str):
        problems.add("name", "name must be a string")
        return None
    if value is not None and len(value) > MAX_KEY_LENGTH:
        problems.add("name", f"name must be at most {MAX_KEY_LENGTH} characters")
        return None
    return value or None


def _event(item: dict[str, Any], problems: _Problems) -> str | None:
    value = item.get("event")
    if not isinstance(value, str) or not value.strip():
        problems.add("event", "event must be a non-empty string")
        return None
    if len(value) > MAX_KEY_LENGTH:
        problems.add("event", f"event must be at most {MAX_KEY_LENGTH} characters")
        return None
    return value


def _with_category(
    item: dict[str, Any], kind: MessageType, properties: dict[str, Any]
) -> dict[str, Any]:
    """A page's top-level `category` has no column of its own; keep it in properties."""
    category = item.get("category")
    if kind != "page" or not isinstance(category, str) or "category" in properties:
        return properties
    return {**properties, "category": category}


def _object(item: dict[str, Any], name: str, problems: _Problems) -> dict[str, Any]:
    value = item.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(name, f"{name} must be a JSON object")
        return {}
    return value


def _timestamp(
    item: dict[str, Any],
    envelope_sent_at: datetime | None,
    received_at: datetime,
    problems: _Problems,
) -> datetime:
    """The event's time, corrected for the client's clock skew as the Segment spec says.

    With `sentAt`, only the client's clock differences are trusted:
    timestamp = receivedAt - (sentAt - originalTimestamp).
    """
    timestamp = _instant(item, "timestamp", problems)
    original = _instant(item, "originalTimestamp", problems)
    sent_at = _instant(item, "sentAt", problems) or envelope_sent_at
    event_field = "originalTimestamp" if original else "timestamp"
    event_time = original or timestamp
    if event_time is None:
        return received_at
    if sent_at is None:
        corrected = event_time
    else:
        try:
            corrected = received_at - (sent_at - event_time)
        except OverflowError:
            problems.add(event_field, f"{event_field} is out of range after clock-skew correction")
            return received_at
    # Events are stored in monthly partitions: a wild time would make a partition
    # for a month nobody lived in, so it is refused rather than kept.
    if corrected < EARLIEST_EVENT:
        problems.add(event_field, f"{event_field} is before {EARLIEST_EVENT.date().isoformat()}")
    elif corrected > received_at + MAX_FUTURE:
        problems.add(event_field, f"{event_field} is more than a day in the future")
    return corrected


def _instant(item: dict[str, Any], name: str, problems: _Problems) -> datetime | None:
    value = item.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(name, f"{name} must be an ISO-8601 string")
        return None
    try:
        return _utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        problems.add(name, f"{name} is not a valid ISO-8601 timestamp")
        return None


def _utc(moment: datetime) -> datetime:
    """Aware UTC; a naive time is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_MESSAGE_BYTES",
    "MESSAGE_FIELD",
    "MessageInputError",
    "parse_batch",
    "parse_single",
]
