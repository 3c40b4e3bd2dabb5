"""Every context's tables, gathered for alembic and the drift test."""

from sqlalchemy import MetaData

import cdp.segments.tables
import cdp.tables  # noqa: F401 - imported for their tables
import consent.tables  # noqa: F401 - imported for their tables
import delivery.journeys.tables
import delivery.sending.tables
import delivery.templates.tables
import delivery.tracking.tables  # noqa: F401 - imported for their tables
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
    # Tables in other schemas (the dramatiq broker's) are managed by raw SQL, and
    # event partitions are made at run time by cdp_ensure_event_partition().
    if type_ == "table" and getattr(obj, "schema", None) not in (None, "public"):
        return False
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return not (reflected and str(getattr(table, "name", "")).startswith("events_p"))
