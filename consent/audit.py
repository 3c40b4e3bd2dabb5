"""The audit log: who did what, when, and in which request.

Entries name objects by id and never hold raw personal data; a data subject
appears only as a profile id or a keyed hash. The runtime role may insert and
read entries, never change them.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import structlog
from sqlalchemy import text

from domain.credentials import Principal
from domain.ids import new_id
from domain.uow import UnitOfWork


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


@dataclass(frozen=True)
class AuditEntry:
    id: UUID
    at: datetime
    actor_kind: str
    actor_id: str
    action: str
    object_type: str
    object_id: str
    request_id: str | None
    details: dict[str, Any]


def _request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value is not None else None


_INSERT = text(
    "INSERT INTO audit_log (workspace_id, id, at, actor_kind, actor_id, action, object_type, "
    "object_id, request_id, details) VALUES (:ws, :id, :at, :actor_kind, :actor_id, :action, "
    ":object_type, :object_id, :request_id, CAST(:details AS jsonb))"
)


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
    await uow.execute(
        _INSERT,
        [
            {
                "ws": uow.workspace_id,
                "id": new_id(),
                "at": now,
                "actor_kind": actor.kind,
                "actor_id": actor.id,
                "action": action,
                "object_type": object_type,
                "object_id": str(object_id),
                "request_id": request_id,
                "details": orjson.dumps(dict(details or {})).decode(),
            }
            for object_id, details in items
        ],
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
    conditions = ["workspace_id = :ws"]
    params: dict[str, Any] = {"ws": uow.workspace_id, "limit": limit}
    if before is not None:
        conditions.append("id < :before")
        params["before"] = before
    if action is not None:
        conditions.append("action = :action")
        params["action"] = action
    if object_id is not None:
        conditions.append("object_id = :object_id")
        params["object_id"] = object_id
    rows = await uow.execute(
        text(
            "SELECT id, at, actor_kind, actor_id, action, object_type, object_id, request_id, "  # noqa: S608 - fixed fragments
            f"details FROM audit_log WHERE {' AND '.join(conditions)} "
            "ORDER BY id DESC LIMIT :limit"
        ),
        params,
    )
    return [AuditEntry(**r._mapping) for r in rows]  # noqa: SLF001 - SQLAlchemy's public mapping


async def entries_by_id(uow: UnitOfWork, ids: list[UUID]) -> dict[UUID, AuditEntry]:
    rows = await uow.execute(
        text(
            "SELECT id, at, actor_kind, actor_id, action, object_type, object_id, request_id, "
            "details FROM audit_log WHERE workspace_id = :ws AND id = ANY(:ids)"
        ),
        {"ws": uow.workspace_id, "ids": ids},
    )
    return {r.id: AuditEntry(**r._mapping) for r in rows}  # noqa: SLF001 - public mapping
