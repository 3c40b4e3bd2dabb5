"""Audit entries for what a GraphQL caller does, in the caller's transaction."""

from collections.abc import Mapping
from typing import Any

from strawberry.types import Info

from consent import audit


async def record(
    info: Info,
    action: str,
    *,
    object_type: str,
    object_id: object,
    details: Mapping[str, Any] | None = None,
) -> None:
    actor = audit.Actor.of(await info.context.principal())
    await audit.record(
        await info.context.uow(),
        actor,
        action,
        object_type=object_type,
        object_id=object_id,
        details=details,
    )
