"""Passing many values to PostgreSQL cheaply.

psycopg dumps a Python list as a text array, quoting every element with a
regular expression; for batches of hundreds of rows that costs more than the
SQL itself. Values that never need quoting (UUIDs, integers, dates) go as one
array literal instead, and rows go as one JSON document (orjson is fast C)
that the statement expands with `jsonb_to_recordset`.
"""

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any
from uuid import UUID

import orjson


def array_literal(values: Iterable[UUID | int | date]) -> str:
    """`{a,b,c}` for values whose text form has no quotes, commas or braces."""
    return "{" + ",".join(str(v) for v in values) + "}"


def json_rows(rows: Sequence[dict[str, Any]] | Sequence[Any]) -> str:
    return orjson.dumps(rows).decode()
