"""The audit log: who did what, when, and in which request.

Entries name objects by id and never hold raw personal data; a data subject
appears only as a profile id or a keyed hash. The runtime role may insert and
read entries, never change them.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
import structlog

from consent.model import AuditEntry
from consent.repository import audit_log
from domain.credentials import Principal
from domain.ids import new_id
from domain.uow import UnitOfWork

__all__ = ["Actor", "AuditEntry", "entries", "entries_by_id", "record", "record_many"]


@dataclass(frozen=True)
class Actor:
    kind: str
    id: str

    @classmethod
    def of(cls, principal: Principal) -> "Actor":
        return cls(principal.kind, str(principal.credential_id))

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls("system", name)

    @classmethod
    def subject_link(cls, link: str) -> "Actor":
        """The person, acting through a signed link sent to them."""
        return cls("subject", link)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


def _request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value is not None else None


async def record(
    uow: UnitOfWork,
    actor: Actor,
    action: str,
    *,
    object_type: str,
    object_id: object,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Write one entry in the caller's transaction, so it exists exactly when the change does."""
    await record_many(uow, actor, action, object_type=object_type, items=[(object_id, details)])


async def record_many(
    uow: UnitOfWork,
    actor: Actor,
    action: str,
    *,
    object_type: str,
    items: list[tuple[object, Mapping[str, Any] | None]],
) -> None:
    if not items:
        return
    now = uow.clock.now()
    request_id = _request_id()
    await audit_log.insert_many(
        uow,
        [
            audit_log.NewEntry(new_id(), str(object_id), orjson.dumps(dict(details or {})).decode())
            for object_id, details in items
        ],
        at=now,
        actor_kind=actor.kind,
        actor_id=actor.id,
        action=action,
        object_type=object_type,
        request_id=request_id,
    )


async def entries(
    uow: UnitOfWork,
    *,
    limit: int,
    before: UUID | None = None,
    action: str | None = None,
    object_id: str | None = None,
) -> list[AuditEntry]:
    """Newest first."""
    return await audit_log.newest(
        uow, limit=limit, before=before, action=action, object_id=object_id
    )


async def entries_by_id(uow: UnitOfWork, ids: list[UUID]) -> dict[UUID, AuditEntry]:
    return await audit_log.by_id(uow, ids)
