"""Sending domains and their DKIM keys."""

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    LargeBinary,
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

# `status` is PENDING until the DNS checks (deliverability) pass, then
# VERIFIED, or FAILING when a check that passed fails.
sending_domains = Table(
    "sending_domains",
    metadata,
    workspace_id_column(),
    Column("id", PG_UUID(as_uuid=True), nullable=False),
    Column("domain", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'PENDING'")),
    Column("checks", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("checked_at", TS),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("workspace_id", "id"),
    UniqueConstraint("workspace_id", "domain", name="uq_sending_domains_domain"),
)

# One key per selector. A rotation adds a selector; the key signs once its
# record is seen in DNS (`published_at`), and the one before it stops then.
dkim_keys = Table(
    "dkim_keys",
    metadata,
    workspace_id_column(),
    Column("domain_id", PG_UUID(as_uuid=True), nullable=False),
    Column("selector", Text, nullable=False),
    Column("algorithm", Text, nullable=False),
    Column("public_key", Text, nullable=False),
    # The PKCS#8 private key, sealed (delivery/sending/sealing.py).
    Column("private_key", LargeBinary, nullable=False),
    Column("created_at", TS, nullable=False, server_default=func.now()),
    Column("published_at", TS),
    Column("retired_at", TS),
    PrimaryKeyConstraint("workspace_id", "domain_id", "selector"),
    ForeignKeyConstraint(
        ["workspace_id", "domain_id"],
        ["sending_domains.workspace_id", "sending_domains.id"],
        name="fk_dkim_keys_domain",
        ondelete="CASCADE",
    ),
)
