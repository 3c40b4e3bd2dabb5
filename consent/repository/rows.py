"""Result rows as plain data, for exports."""

from collections.abc import Iterable
from typing import Any


def as_dicts(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Each row as a dict keyed by plain `str`.

    Core names a row's keys with its columns' names, a `str` subclass that
    orjson refuses as a key.
    """
    return [
        {str(key): value for key, value in row._mapping.items()}  # noqa: SLF001 - SQLAlchemy's public row mapping
        for row in rows
    ]
