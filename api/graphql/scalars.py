"""The JSON and DateTime scalars of the public schema."""

from datetime import UTC, datetime
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

JSON = NewType("JSON", object)


def _serialize_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("DateTime must be an ISO-8601 string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("DateTime must include a time zone offset")
    return parsed.astimezone(UTC)


SCALARS: dict[object, ScalarDefinition] = {
    JSON: strawberry.scalar(
        name="JSON",
        description="Any JSON value.",
        serialize=lambda v: v,
        parse_value=lambda v: v,
    ),
    datetime: strawberry.scalar(
        name="DateTime",
        description="An ISO-8601 timestamp in UTC.",
        serialize=_serialize_datetime,
        parse_value=_parse_datetime,
    ),
}
