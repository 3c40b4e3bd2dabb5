"""The JSON and DateTime scalars of the public schema."""

from datetime import UTC, datetime
from typing import Any, NewType

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition

JSON = NewType("JSON", object)


def _serialize_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_datetime(value: Any) -> datetime:
    # StrawberryInputCoercionError marks the value as the client's mistake
    # (BAD_USER_INPUT), whichever way it is wrong.
    if not isinstance(value, str):
        raise StrawberryInputCoercionError("DateTime must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise StrawberryInputCoercionError(
            "DateTime must be an ISO-8601 timestamp, e.g. 2024-05-01T12:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise StrawberryInputCoercionError("DateTime must include a time zone offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # a date at the edge of year 1 or 9999, moved past it in UTC
        raise StrawberryInputCoercionError("DateTime is out of range") from None


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
