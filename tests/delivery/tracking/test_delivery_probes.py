"""Reads of deliveries by id stay probes of their key, however large their campaign has grown.

Sending outcomes, hits and bounces each name a few deliveries of a campaign
that may hold a million. Read with `id = ANY(ids)` and planned on statistics
taken while the campaign was small, the read walked the whole campaign
through its recipients' index: a cost that grows with the campaign.
"""

import asyncio
from typing import Any
from uuid import UUID

import pytest

from delivery.deliverability import repository as deliverability_store
from delivery.tracking import repository as tracking_store
from domain.uow import UnitOfWork
from tests.support.factories import seeding
from tests.support.reads import rows_fetched

GROWN = 3000


def _grow(database_url: str, ws: UUID, campaign_id: UUID) -> list[UUID]:
    """The campaign's deliveries, after statistics taken while it had only those, and then
    many more of its deliveries."""
    with seeding(database_url) as conn:
        ids = [row[0] for row in conn.execute(
            "SELECT id FROM deliveries WHERE workspace_id = %s AND campaign_id = %s", (ws, campaign_id)
        )]  # fmt: skip
        conn.execute("ANALYZE deliveries")
        conn.execute(
            "INSERT INTO deliveries (workspace_id, id, campaign_id, profile_id, status, due_at) "
            "SELECT %s, gen_random_uuid(), %s, gen_random_uuid(), 'SENT', now() "
            "FROM generate_series(1, %s)",
            (ws, campaign_id, GROWN),
        )
    return ids


@pytest.mark.parametrize(
    "lookup",
    [tracking_store.deliveries, deliverability_store.deliveries],
    ids=["tracking", "bounces"],
)
def test_deliveries_are_read_by_their_ids_alone(sent: Any, lookup: Any) -> None:
    campaign, _ = sent
    ids = _grow(campaign.database_url, campaign.workspace_id, campaign.campaign_id)

    async def read(uow: UnitOfWork) -> None:
        # Prepared, as a worker's repeated statement is: the plan is the generic one.
        for _ in range(6):
            assert set(await lookup(uow, ids)) == set(ids)

    read_rows = asyncio.run(
        rows_fetched(campaign.database_url, campaign.workspace_id, "deliveries", read)
    )
    assert read_rows <= 6 * 2 * len(ids)
