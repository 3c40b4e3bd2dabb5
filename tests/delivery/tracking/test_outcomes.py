"""Sending outcomes and unsubscribes: counted by the trigger on deliveries, and on the profile."""

import re
from datetime import timedelta
from typing import Any

from strawberry import relay

from delivery.sending import repository as sending_repository
from delivery.tracking import actors
from domain.clock import FrozenClock
from domain.uow import UnitOfWork
from tests.conftest import gql
from tests.delivery.tracking.support import T0, stored, tracking_app
from tests.support.jobs import as_worker

ORDERS = "query($id: ID!) { campaign(id: $id) { stats { clicked orders revenue } } }"
TOTALS = """query($id: ID!) { campaign(id: $id) { stats {
  recipients sent delivered bounced unsubscribed bounceRate unsubscribeRate } } }"""


def test_a_bounce_after_sending_moves_delivered_to_bounced_and_lands_on_the_profile(
    settings, database_url, sent
):
    shop, _inbox = sent
    bounced = shop.people["p1@example.org"]

    async def bounce(uow: UnitOfWork) -> None:
        await uow.fetch(
            "UPDATE deliveries SET status = 'BOUNCED', reason = '550 5.1.1 no such user', "
            " updated_at = %(at)s WHERE workspace_id = %(ws)s AND profile_id = %(p)s",
            {"ws": uow.workspace_id, "p": bounced, "at": T0 + timedelta(hours=1)},
        )

    shop.uow(bounce)
    shop.process()
    assert [e.name for e in shop.events("p0@example.org")] == ["Email Delivered"]
    events = shop.events("p1@example.org")
    assert [e.name for e in events] == ["Email Delivered", "Email Bounced"]
    assert events[1].properties["reason"] == "550 5.1.1 no such user"

    async def seen(uow: UnitOfWork) -> list[Any]:
        rows = await uow.fetch("SELECT computed FROM profiles WHERE workspace_id = %(ws)s",
                               {"ws": uow.workspace_id})  # fmt: skip
        return [r.computed.get("last_seen") for r in rows]

    assert shop.uow(seen) == [None] * 4, "a message delivered is not the person's activity"
    with tracking_app(settings, database_url, shop.clock) as client:
        body = gql(client, TOTALS, {"id": relay.to_base64("Campaign", shop.campaign_id)},
                   token=shop.token)  # fmt: skip
    stats = body["data"]["campaign"]["stats"]
    assert (stats["recipients"], stats["sent"], stats["delivered"], stats["bounced"]) == (
        4,
        4,
        3,
        1,
    )
    assert stats["bounceRate"] == 0.25


def test_a_one_click_unsubscribe_counts_once_against_the_message_it_came_from(
    settings, database_url, sent
):
    shop, inbox = sent
    header = str(inbox.to("p2@example.org")["List-Unsubscribe"])
    [url] = re.findall(r"<(https?://[^>]+/unsubscribe/[^>]+)>", header)
    path = "/unsubscribe/" + url.split("/unsubscribe/", 1)[1]
    shop.clock.set(T0 + timedelta(hours=3))
    with tracking_app(settings, database_url, shop.clock) as client:
        for _ in range(2):
            answer = client.post(path, data={"List-Unsubscribe": "One-Click"})
            assert answer.status_code == 200
        body = gql(client, TOTALS, {"id": relay.to_base64("Campaign", shop.campaign_id)},
                   token=shop.token)  # fmt: skip
    stats = body["data"]["campaign"]["stats"]
    assert (stats["unsubscribed"], stats["unsubscribeRate"]) == (1, 0.25)
    [event] = shop.events("p2@example.org", "Unsubscribed")
    assert event.properties["campaign_id"] == str(shop.campaign_id)
    assert event.properties["purpose"] == "newsletter"


def test_an_order_stored_before_its_click_was_processed_is_still_credited_to_it(
    settings, database_url, sent
):
    shop, inbox = sent
    sale, _about, _pixel = inbox.tracked_paths("p3@example.org")
    shop.clock.set(T0 + timedelta(minutes=5))
    with tracking_app(settings, database_url, shop.clock) as client:
        assert client.get(sale, headers={"User-Agent": "Mozilla/5.0"}).status_code == 302
        stored(client, 1)
        shop.clock.advance(timedelta(seconds=20))
        shop.track("p3@example.org", "Order Completed", {"order_id": "o-9", "revenue": 12},
                   message_id="order-9")  # fmt: skip
        shop.process()
        body = gql(client, ORDERS, {"id": relay.to_base64("Campaign", shop.campaign_id)},
                   token=shop.token)  # fmt: skip
    assert body["data"]["campaign"]["stats"] == {"clicked": 1, "orders": 1, "revenue": 12.0}


def test_processed_hits_are_deleted_after_their_keeping_time_and_not_before(
    settings, database_url, sent
):
    shop, inbox = sent
    *_, pixel = inbox.tracked_paths("p0@example.org")
    shop.clock.set(T0 + timedelta(minutes=5))
    with tracking_app(settings, database_url, shop.clock) as client:
        client.get(pixel, headers={"User-Agent": "Mozilla/5.0"})
        stored(client, 1)
    shop.process()

    def hits() -> int:
        async def count(uow: UnitOfWork) -> int:
            rows = await uow.fetch("SELECT count(*) AS n FROM tracking_hits "
                                   "WHERE workspace_id = %(ws)s", {"ws": uow.workspace_id})  # fmt: skip
            return int(rows[0].n)

        return shop.uow(count)  # type: ignore[no-any-return]

    def prune(after: timedelta) -> None:
        as_worker(database_url, actors.run_prune, clock=FrozenClock(T0 + after))

    prune(timedelta(days=29))
    assert hits() == 1
    prune(timedelta(days=31))
    assert hits() == 0


def test_the_counters_agree_with_the_deliveries_whichever_statement_moved_them(
    settings, database_url, sent
):
    """A SENT outcome written again, or one that finds its delivery moved first (a bounce
    recorded before it), is counted once: the counters stay what the deliveries say."""
    shop, _inbox = sent
    again, raced = shop.people["p0@example.org"], shop.people["p1@example.org"]
    later = T0 + timedelta(minutes=5)

    async def delivery_of(uow: UnitOfWork, profile_id: Any) -> Any:
        [row] = await uow.fetch("SELECT id FROM deliveries WHERE workspace_id = %(ws)s "
                                "AND profile_id = %(p)s", {"ws": uow.workspace_id, "p": profile_id})  # fmt: skip
        return row.id

    async def moves(uow: UnitOfWork) -> None:
        # p1's delivery as if its outcome were not yet written, then bounced before it is.
        await uow.fetch(
            "UPDATE deliveries SET status = 'QUEUED', sent_at = NULL WHERE workspace_id = %(ws)s "
            "AND profile_id = %(p)s", {"ws": uow.workspace_id, "p": raced},
        )  # fmt: skip
        await uow.fetch(
            "UPDATE deliveries SET status = 'BOUNCED', reason = '550 5.1.1' "
            "WHERE workspace_id = %(ws)s AND profile_id = %(p)s",
            {"ws": uow.workspace_id, "p": raced},
        )
        ids = [await delivery_of(uow, again), await delivery_of(uow, raced)]
        await uow.commit()
        async with uow.autocommit() as out:
            await sending_repository.record_sent(
                out, uow.workspace_id, [(ids[0], "<again@x>", later), (ids[1], "<raced@x>", later)]
            )

    async def from_deliveries(uow: UnitOfWork) -> tuple[int, int, int]:
        [row] = await uow.fetch(
            "SELECT count(sent_at) AS sent, count(sent_at) FILTER (WHERE status <> 'BOUNCED') "
            " AS delivered, count(*) FILTER (WHERE status = 'BOUNCED') AS bounced "
            "FROM deliveries WHERE workspace_id = %(ws)s", {"ws": uow.workspace_id},
        )  # fmt: skip
        return row.sent, row.delivered, row.bounced

    shop.uow(moves)
    shop.process()
    with tracking_app(settings, database_url, shop.clock) as client:
        body = gql(client, TOTALS, {"id": relay.to_base64("Campaign", shop.campaign_id)},
                   token=shop.token)  # fmt: skip
    stats = body["data"]["campaign"]["stats"]
    assert (stats["sent"], stats["delivered"], stats["bounced"]) == shop.uow(from_deliveries)
    assert (stats["sent"], stats["delivered"], stats["bounced"]) == (4, 4, 0)
    assert [e.name for e in shop.events("p0@example.org")] == ["Email Delivered"]
