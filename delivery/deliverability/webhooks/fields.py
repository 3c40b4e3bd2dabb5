"""Typed reads of relay JSON that turn every surprise into `BadPayload`.

Relays send JSON we do not control. A missing field, a null where text was
documented, or a number where a list was documented is refused with a short
reason naming the field, never left to surface as a KeyError or TypeError.
Absent, null and empty optional text all read as None.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import cast

import orjson

from delivery.deliverability.webhooks.model import BadPayload

JsonObject = Mapping[str, object]


def load(body: bytes) -> object:
    try:
        return cast("object", orjson.loads(body))
    except orjson.JSONDecodeError:
        raise BadPayload("body is not valid JSON") from None


def obj(value: object, where: str) -> JsonObject:
    if not isinstance(value, dict):
        raise BadPayload(f"{where}: expected an object")
    return cast("JsonObject", value)


def array(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise BadPayload(f"{where}: expected a list")
    return cast("list[object]", value)


def opt_text(data: JsonObject, key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadPayload(f"{where}.{key}: expected a string")
    return value.strip() or None


def text(data: JsonObject, key: str, where: str) -> str:
    value = opt_text(data, key, where)
    if value is None:
        raise BadPayload(f"{where}.{key}: required")
    return value


def opt_obj(data: JsonObject, key: str, where: str) -> JsonObject:
    """A nested object, or an empty one when the key is absent or null."""
    value = data.get(key)
    return {} if value is None else obj(value, f"{where}.{key}")


def opt_array(data: JsonObject, key: str, where: str) -> list[object]:
    value = data.get(key)
    return [] if value is None else array(value, f"{where}.{key}")


def iso_time(value: str, where: str) -> datetime:
    """An ISO 8601 time in UTC; a time without an offset is taken as UTC."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise BadPayload(f"{where}: not an ISO 8601 time") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def unix_time(value: object, where: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadPayload(f"{where}: expected unix seconds")
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        raise BadPayload(f"{where}: expected unix seconds") from None


def id_text(data: JsonObject, key: str, where: str) -> str | None:
    """An identifier that a provider sends as a string or as an integer."""
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return opt_text(data, key, where)


def header_value(headers: object, name: str, where: str) -> str | None:
    """A header from a list of {Name, Value} or {name, value} objects, matched without case."""
    if headers is None:
        return None
    for index, item in enumerate(array(headers, where)):
        entry = obj(item, f"{where}[{index}]")
        key = entry.get("Name", entry.get("name"))
        value = entry.get("Value", entry.get("value"))
        if isinstance(key, str) and key.lower() == name.lower() and isinstance(value, str):
            return value
    return None
