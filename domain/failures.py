"""Jobs that exhausted their retries are kept in a table, not lost."""

import dramatiq
import psycopg
import structlog
from dramatiq.broker import MessageProxy
from psycopg.types.json import Jsonb
from sqlalchemy import Column, DateTime, Integer, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from domain.db import metadata

log = structlog.get_logger(__name__)

failed_jobs = Table(
    "failed_jobs",
    metadata,
    Column("message_id", PG_UUID(as_uuid=True), primary_key=True),
    Column("actor_name", Text, nullable=False),
    Column("queue_name", Text, nullable=False),
    Column("args", JSONB, nullable=False),
    Column("kwargs", JSONB, nullable=False),
    Column("retries", Integer, nullable=False),
    Column("error", Text),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

_RECORD = """
INSERT INTO failed_jobs (message_id, actor_name, queue_name, args, kwargs, retries, error)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (message_id) DO UPDATE
SET retries = EXCLUDED.retries, error = EXCLUDED.error, failed_at = now()
"""


class RecordFailedJobs(dramatiq.Middleware):
    def __init__(self, libpq_url: str) -> None:
        self._url = libpq_url

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        error = message.options.get("traceback")
        try:
            with psycopg.connect(self._url, connect_timeout=5) as conn:
                conn.execute(
                    _RECORD,
                    (
                        message.message_id,
                        message.actor_name,
                        message.queue_name,
                        Jsonb(list(message.args)),
                        Jsonb(message.kwargs),
                        int(message.options.get("retries", 0)),
                        error,
                    ),
                )
        except psycopg.Error as exc:
            log.exception(
                "failed_jobs.record_failed", message_id=message.message_id, error=repr(exc)
            )
