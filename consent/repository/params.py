"""Bound values that the consent statements share: id arrays and pre-serialized JSON."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Integer, LargeBinary, Text, any_, cast, literal
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from consent.model import ConsentChange
from domain.sqlparams import array_literal

UUID_TYPE = PG_UUID(as_uuid=True)


def uuid_array(ids: Sequence[UUID]) -> ColumnElement[Any]:
    """`ids` as one `uuid[]`, sent as an array literal (see `domain.sqlparams`)."""
    return cast(literal(array_literal(ids), Text), ARRAY(UUID_TYPE))


def int_array(values: Sequence[int]) -> ColumnElement[Any]:
    """`values` as one `int[]`, sent as an array literal."""
    return cast(literal(array_literal(values), Text), ARRAY(Integer))


def any_uuid(ids: Sequence[UUID]) -> ColumnElement[Any]:
    """`= ANY(...)` of a list of ids, one parameter whatever its length."""
    return any_(literal(list(ids), ARRAY(UUID_TYPE)))


def any_bytes(values: Sequence[bytes]) -> ColumnElement[Any]:
    return any_(literal(list(values), ARRAY(LargeBinary)))


def jsonb(document: str | None) -> ColumnElement[Any]:
    """A document already serialized with orjson (it writes UUIDs and datetimes).

    The JSONB type would serialize it again, as a JSON string.
    """
    return cast(literal(document, Text), JSONB)


def change_columns(change: ConsentChange, *, actor: str) -> dict[str, Any]:
    """The columns a ledger record and a pending double opt-in grant both take from a change."""
    return {
        "purpose": change.purpose,
        "channel": change.channel,
        "lawful_basis": change.lawful_basis.value,
        "source": change.source,
        "notice_version": change.notice_version,
        "ip": change.ip,
        "user_agent": change.user_agent,
        "actor": actor,
    }
