"""The consent context's tables.

The ledger and the audit log are append-only: the runtime role may only
INSERT and SELECT them (see migration 0004). Suppression entries hold keyed
hashes, never identifiers, so they can outlive an erasure.
"""

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from domain.db import metadata
from domain.personal_data import PERSONAL_DATA
from domain.tenancy import workspace_id_column

PERSONAL = {PERSONAL_DATA: True}
TS = DateTime(timezone=True)


def _uuid(name: str, *, nullable: bool = False) -> Column[object]:
    return Column(name, PG_UUID(as_uuid=True), nullable=nullable)


consent_notices = Table(
    "consent_notices",
    metadata,
    workspace_id_column(),
    Column("purpose", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "purpose", "version"),
)

consent_records = Table(
    "consent_records",
    metadata,
    workspace_id_column(),
    _uuid("id"),
    _uuid("profile_id"),
    Column("purpose", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("lawful_basis", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("notice_version", Text),
    Column("ip", Text, info=PERSONAL),
    Column("user_agent", Text, info=PERSONAL),
    Column("actor", Text, nullable=False),
    Column("recorded_at", TS, nullable=False),
    PrimaryKeyConstraint("workspace_id", "id"),
    Index("ix_consent_records_subject", "workspace_id", "profile_id", "purpose", "channel"),
)

consent_confirmations = Table(
    "consent_confirmations",
    metadata,
    workspace_id_column(),
    _uuid("id"),
    _uuid("profile_id"),
    Column("purpose", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("lawful_basis", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("notice_version", Text),
    Column("ip", Text, info=PERSONAL),
    Column("user_agent", Text, info=PERSONAL),
    Column("actor", Text, nullable=False),
    Column("requested_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("confirmed_at", TS),
    PrimaryKeyConstraint("workspace_id", "id"),
    Index("ix_consent_confirmations_profile", "workspace_id", "profile_id"),
)

suppressions = Table(
    "suppressions",
    metadata,
    workspace_id_column(),
    Column("digest", LargeBinary, nullable=False),
    Column("identifier_kind", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    PrimaryKeyConstraint("workspace_id", "digest", "channel", "purpose", "reason"),
)

data_subject_requests = Table(
    "data_subject_requests",
    metadata,
    workspace_id_column(),
    _uuid("id"),
    Column("type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("identifier_kind", Text, nullable=False),
    Column("identifier_digest", LargeBinary, nullable=False),
    _uuid("profile_id", nullable=True),
    Column("note", Text, info=PERSONAL),
    Column("corrections", JSONB, info=PERSONAL),
    Column("export", JSONB, info=PERSONAL),
    Column("received_at", TS, nullable=False),
    Column("due_at", TS, nullable=False),
    Column("extended_months", Integer, nullable=False, server_default="0"),
    Column("extension_reason", Text),
    Column("completed_at", TS),
    Column("rejection_reason", Text),
    Column("actor", Text, nullable=False),
    Column("updated_at", TS, nullable=False),
    PrimaryKeyConstraint("workspace_id", "id"),
    Index("ix_data_subject_requests_status", "workspace_id", "status", "id"),
    Index("ix_data_subject_requests_digest", "workspace_id", "identifier_digest"),
)

audit_log = Table(
    "audit_log",
    metadata,
    workspace_id_column(),
    _uuid("id"),
    Column("at", TS, nullable=False),
    Column("actor_kind", Text, nullable=False),
    Column("actor_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("object_type", Text, nullable=False),
    Column("object_id", Text, nullable=False),
    Column("request_id", Text),
    Column("details", JSONB, nullable=False),
    PrimaryKeyConstraint("workspace_id", "id"),
    Index("ix_audit_log_object_id", "workspace_id", "object_id", "id"),
)
