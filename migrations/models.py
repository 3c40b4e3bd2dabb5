"""Every context's tables, gathered for alembic and the drift test."""

from sqlalchemy import MetaData

import domain.credentials
import domain.failures
import domain.outbox
import domain.workspaces  # noqa: F401 - imported for their tables
from domain.db import metadata


def target_metadata() -> MetaData:
    return metadata


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # Tables in other schemas (the dramatiq broker's) are managed by raw SQL.
    return not (type_ == "table" and getattr(obj, "schema", None) not in (None, "public"))
