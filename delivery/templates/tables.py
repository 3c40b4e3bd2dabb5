"""The templates' tables: a template is a name, and its versions are immutable."""

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from domain.db import metadata
from domain.tenancy import workspace_id_column

TS = DateTime(timezone=True)

# `version` is the newest version's number; what a campaign or a journey step
# sends names its own version, which never changes.
templates = Table(
    "templates",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("updated_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "id"),
    UniqueConstraint("workspace_id", "name", name="uq_templates_name"),
)

template_versions = Table(
    "template_versions",
    metadata,
    workspace_id_column(),
    Column("template_id", PG_UUID(as_uuid=True), nullable=False),
    Column("version", Integer, nullable=False),
    Column("subject", Text, nullable=False),
    Column("preheader", Text),
    Column("mjml", Text, nullable=False),
    Column("text", Text),
    # The lints of this version when it was saved: [{code, message, line}].
    Column("warnings", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "template_id", "version"),
    ForeignKeyConstraint(
        ["workspace_id", "template_id"],
        ["templates.workspace_id", "templates.id"],
        name="fk_template_versions_template",
        ondelete="CASCADE",
    ),
)
