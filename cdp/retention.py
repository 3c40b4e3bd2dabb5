"""Event retention.

The server-wide period (EVENT_RETENTION_DAYS) drops whole monthly partitions,
which is cheap; a workspace may set a shorter period of its own, enforced by
deleting its older events.
"""

from collections.abc import Callable
from datetime import date, datetime, timedelta
from uuid import UUID

from cdp import repository
from cdp.segments import repository as segment_store
from cdp.segments import services as segment_services
from consent import audit
from domain.errors import ValidationError
from domain.uow import UnitOfWork


def cutoff_for(now: datetime, days: int) -> date:
    """The first day that must be kept; partitions ending on or before it may go."""
    return (now - timedelta(days=days)).date()


async def drop_expired_partitions(uow: UnitOfWork, *, days: int) -> int:
    """Drop event partitions wholly older than `days`; 0 days means keep everything."""
    if days <= 0:
        return 0
    return await repository.drop_event_partitions_before(uow, cutoff_for(uow.clock.now(), days))


async def reevaluate_after_drop(units: Callable[[UUID | None], UnitOfWork], *, days: int) -> int:
    """Queue a full evaluation of each segment, in every workspace, that counts events older
    than `days` (an all-time count, say): the dropped months took some away. How many."""
    async with units(None) as uow:
        workspace_ids = await segment_store.workspaces_with_segments(uow)
    queued = 0
    for workspace_id in workspace_ids:
        async with units(workspace_id) as uow:
            queued += await segment_services.events_removed(uow, older_than=timedelta(days=days))
            await uow.commit()
    return queued


MAX_WORKSPACE_RETENTION_DAYS = 3650


async def set_workspace_retention(uow: UnitOfWork, actor: audit.Actor, days: int | None) -> None:
    """A workspace's own event retention period in days; None keeps events (up to the server's)."""
    if days is not None and not 1 <= days <= MAX_WORKSPACE_RETENTION_DAYS:
        raise ValidationError(
            f"days must be between 1 and {MAX_WORKSPACE_RETENTION_DAYS}, or null", field="days"
        )
    await repository.set_workspace_retention(uow, days)
    await audit.record(
        uow,
        actor,
        "workspace.event_retention_set",
        object_type="workspace",
        object_id=uow.workspace_id,
        details={"days": days},
    )


async def workspace_retention(uow: UnitOfWork) -> int | None:
    return await repository.workspace_retention(uow)


async def retention_periods(uow: UnitOfWork) -> list[tuple[UUID, int]]:
    """Every workspace that set a period (an owner function: the runtime role sees one)."""
    return await repository.retention_periods(uow)


# A first period set on a long history may cover millions of events: they go
# in bounded transactions, so no single one holds locks or WAL for long, and a
# job cut short has kept what it committed and resumes where it stopped.
DELETE_BATCH = 5_000


def expiry(now: datetime, days: int) -> datetime:
    """Events before this moment are past a period of `days`."""
    return now - timedelta(days=days)


async def delete_expired_events(
    uow: UnitOfWork, *, before: datetime, limit: int = DELETE_BATCH
) -> int:
    """Delete up to `limit` of this workspace's events before `before` (under RLS).

    Fewer than `limit` deleted means none are left.
    """
    return await repository.delete_events_before(uow, before, limit=limit)
