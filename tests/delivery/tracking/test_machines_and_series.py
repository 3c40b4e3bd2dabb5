"""Machine opens left out of the counts, and time series that add up to the totals."""

from datetime import UTC, datetime, timedelta
from typing import Any

from strawberry import relay

from domain.uow import UnitOfWork
from tests.conftest import gql
from tests.delivery.tracking.support import T0, stored, tracking_app

APPLE = ("17.58.101.7", 443)
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
SERIES = """
query($from: DateTime!, $to: DateTime!, $interval: String!, $c: ID) {
  messageStats(from: $from, to: $to, interval: $interval, campaignId: $c) {
    start end stats { recipients sent delivered opened opens machineOpens clicked clicks }
  }
}
"""
TOTALS = """query($id: ID!) { campaign(id: $id) { stats {
  recipients sent delivered opened opens machineOpens clicked clicks } } }"""


def test_an_apple_proxy_fetch_and_an_open_a_second_after_sending_are_flagged_not_counted(
    settings, database_url, sent
):
    shop, inbox = sent
    *_, early_pixel = inbox.tracked_paths("p2@example.org")
    *_, apple_pixel = inbox.tracked_paths("p3@example.org")
    shop.clock.set(T0 + timedelta(seconds=1))
    with tracking_app(settings, database_url, shop.clock) as client:
        assert client.get(early_pixel, headers={"User-Agent": BROWSER}).status_code == 200
        shop.clock.set(T0 + timedelta(minutes=10))
        with tracking_app(settings, database_url, shop.clock, client=APPLE) as apple:
            assert apple.get(apple_pixel, headers={"User-Agent": BROWSER}).status_code == 200
            stored(apple, 1)
        stored(client, 1)
    shop.process()

    async def judged(uow: UnitOfWork) -> list[tuple[str, bool, str | None, str | None]]:
        rows = await uow.fetch(
            "SELECT ip, machine, reason, proxy FROM tracking_hits WHERE workspace_id = %(ws)s "
            "ORDER BY at", {"ws": uow.workspace_id})  # fmt: skip
        return [(r.ip, r.machine, r.reason, r.proxy) for r in rows]

    assert shop.uow(judged) == [("127.0.0.1", True, "too-soon", None),
                                (APPLE[0], True, "privacy-proxy", "apple")]  # fmt: skip
    assert shop.events("p2@example.org", "Email Opened") == []
    assert shop.events("p3@example.org", "Email Opened") == [], "a proxy's fetch is no event"
    with tracking_app(settings, database_url, shop.clock) as client:
        body = gql(client, TOTALS, {"id": relay.to_base64("Campaign", shop.campaign_id)},
                   token=shop.token)  # fmt: skip
    stats = body["data"]["campaign"]["stats"]
    assert (stats["opened"], stats["opens"], stats["machineOpens"]) == (0, 0, 2)


def _sum(points: list[dict[str, Any]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for point in points:
        for key, value in point["stats"].items():
            found[key] = found.get(key, 0) + value
    return found


def test_the_time_series_adds_up_to_the_totals_at_every_interval(settings, database_url, sent):
    shop, inbox = sent
    paths = {address: inbox.tracked_paths(address) for address in shop.people}
    with tracking_app(settings, database_url, shop.clock) as client:
        # Hits spread over three days: each person opens, two click, one clicks twice.
        for n, (_address, (sale, _about, pixel)) in enumerate(sorted(paths.items())):
            shop.clock.set(T0 + timedelta(hours=5 + 23 * n))
            client.get(pixel, headers={"User-Agent": BROWSER})
            if n % 2 == 0:
                client.get(sale, headers={"User-Agent": BROWSER})
                shop.clock.advance(timedelta(minutes=30))
                client.get(sale, headers={"User-Agent": BROWSER})
        stored(client, 4 + 2 * 2)
        shop.process()
        campaign = relay.to_base64("Campaign", shop.campaign_id)
        totals = gql(client, TOTALS, {"id": campaign}, token=shop.token)["data"]["campaign"]
        assert totals["stats"]["opened"] == 4
        assert totals["stats"]["clicks"] == 4
        window = {"from": (T0 - timedelta(hours=3)).isoformat(),
                  "to": (T0 + timedelta(days=5)).isoformat()}  # fmt: skip
        for interval in ("hour", "day", "week", "month"):
            body = gql(client, SERIES, {**window, "interval": interval, "c": campaign},
                       token=shop.token)  # fmt: skip
            assert "errors" not in body, body
            points = body["data"]["messageStats"]
            assert _sum(points) == totals["stats"], interval
            starts = [datetime.fromisoformat(p["start"]) for p in points]
            assert starts == sorted(starts)
            assert len(set(starts)) == len(starts)
            assert all(
                datetime.fromisoformat(p["end"]) > s for p, s in zip(points, starts, strict=True)
            )
        daily = gql(client, SERIES, {**window, "interval": "day", "c": campaign},
                    token=shop.token)["data"]["messageStats"]  # fmt: skip
        opened_by_day = [p["stats"]["opened"] for p in daily]
        assert opened_by_day == [1, 1, 1, 1, 0, 0], "one person a day, from the first day"
        assert datetime.fromisoformat(daily[0]["start"]) == datetime(2026, 11, 2, tzinfo=UTC)
        bad = gql(client, SERIES, {**window, "interval": "fortnight", "c": campaign},
                  token=shop.token)  # fmt: skip
        assert "interval" in bad["errors"][0]["message"]


def test_a_bot_storm_on_one_link_is_answered_but_counts_five_clicks_at_most(
    settings, database_url, sent
):
    shop, inbox = sent
    sale, about, _pixel = inbox.tracked_paths("p0@example.org")
    shop.clock.set(T0 + timedelta(minutes=1))
    with tracking_app(settings, database_url, shop.clock) as client:
        answers = {client.get(sale, headers={"User-Agent": BROWSER}).status_code for _ in range(20)}
        assert answers == {302}
        stored(client, 20)
        shop.process()
        shop.clock.advance(timedelta(minutes=5))
        assert client.get(about, headers={"User-Agent": BROWSER}).status_code == 302
        stored(client, 21)
        shop.process()
        body = gql(client, TOTALS.replace("clicks }", "clicks machineClicks }"),
                   {"id": relay.to_base64("Campaign", shop.campaign_id)}, token=shop.token)  # fmt: skip
    stats = body["data"]["campaign"]["stats"]
    assert (stats["clicked"], stats["clicks"], stats["machineClicks"]) == (1, 6, 15)
