"""Event retention: whole months of events older than the retention period are dropped."""

from datetime import date, datetime, timedelta

from sqlalchemy import text

from domain.uow import UnitOfWork


def cutoff_for(now: datetime, days: int) -> date:
    """The first day that must be kept; partitions ending on or before it may go."""
    return (now - timedelta(days=days)).date()


async def drop_expired_partitions(uow: UnitOfWork, *, days: int) -> int:
    """Drop event partitions wholly older than `days`; 0 days means keep everything."""
    if days <= 0:
        return 0
    result = await uow.execute(
        text("SELECT cdp_drop_event_partitions_before(:cutoff)"),
        {"cutoff": cutoff_for(uow.clock.now(), days)},
    )
    return int(result.scalar_one())
