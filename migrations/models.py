"""Every context's tables, gathered for alembic and the drift test."""

from sqlalchemy import MetaData

import domain.credentials
import domain.failures
import domain.outbox
import domain.workspaces  # noqa: F401 - imported for their tables
from domain.db import metadata


def target_metadata() -> MetaData:
    return metadata
