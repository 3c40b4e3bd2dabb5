"""Reads of queued events by (id, time) stay probes of the events' key, however many events the
workspace holds and whatever the statistics say.

Joined to the queued ids, each read took every event of the workspace when
the planner guessed the events table was small: a cost that grows with the
workspace, invisible in small tests.
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from delivery.journeys import inbox
from delivery.tracking import repository
from domain.uow import UnitOfWork
from tests.support.factories import events, seeding
from tests.support.reads import rows_fetched

BACKGROUND = 4000
ORDERS = 20

_EVENTS = "events_p%"


def _seed(database_url: str, ws: uuid.UUID) -> tuple[list[uuid.UUID], list[datetime]]:
    at = datetime.now(UTC) - timedelta(hours=1)
    with seeding(database_url) as conn:
        ids = events(conn, ws, ORDERS, profile_id=lambda _: uuid.uuid4(), name="Order Completed",
                     timestamp=at, properties={"revenue": 10})  # fmt: skip
        # Statistics taken before the workspace's other events arrived, as after a burst.
        conn.execute("ANALYZE events")
        events(conn, ws, BACKGROUND, profile_id=lambda _: uuid.uuid4(), name="Page Viewed",
               timestamp=at)  # fmt: skip
    return ids, [at] * ORDERS


def test_attributing_orders_reads_only_their_events(database_url, workspace):
    ws = workspace.workspace.id
    ids, times = _seed(database_url, ws)

    async def attribute(uow: UnitOfWork) -> None:
        await uow.pipeline(repository.attribute(uow, ids, times, name="Order Completed",
                                                window=timedelta(days=5)))  # fmt: skip

    assert asyncio.run(rows_fetched(database_url, ws, _EVENTS, attribute)) <= 2 * ORDERS


def test_the_journeys_inbox_reads_only_its_events(database_url, workspace):
    ws = workspace.workspace.id
    ids, times = _seed(database_url, ws)
    with seeding(database_url) as conn:
        conn.execute(
            "INSERT INTO journey_inbox (workspace_id, event_ids, event_ats, events) "
            "VALUES (%s, %s, %s, %s)",
            (ws, ids, times, len(ids)),
        )

    async def claim(uow: UnitOfWork) -> None:
        assert len(await inbox.claim(uow)) == ORDERS

    assert asyncio.run(rows_fetched(database_url, ws, _EVENTS, claim)) <= 2 * ORDERS
