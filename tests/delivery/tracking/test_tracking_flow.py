"""Opens, clicks and orders end to end: a real send, the links fetched over HTTP, the stats read."""

from datetime import timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import event
from strawberry import relay

from delivery.sending import campaigns
from delivery.tracking.significance import Arm, variant_test
from delivery.tracking.tokens import Tokens
from tests.conftest import StatementCounter, gql
from tests.delivery.tracking.support import (
    ACTOR,
    SALE,
    T0,
    stored,
    tracking_app,
)
from tests.support.database import SECRET

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Thunderbird/128.0"
STATS = """
query($id: ID!) { campaign(id: $id) {
  stats { recipients sent delivered opened opens machineOpens clicked clicks converted orders
          revenue openRate clickRate clickToOpenRate conversionRate revenuePerEmail }
  variants { name stats { sent opened clicked converted revenue } }
} }
"""


def _campaign_stats(client: Any, token: str, campaign_id: Any) -> dict[str, Any]:
    body = gql(client, STATS, {"id": relay.to_base64("Campaign", campaign_id)}, token=token)
    assert "errors" not in body, body
    return body["data"]["campaign"]  # type: ignore[no-any-return]


def _variant_of(stats: dict[str, Any], field: str) -> list[str]:
    return [v["name"] for v in stats["variants"] if v["stats"][field]]


def test_a_sent_message_records_an_open_and_a_click_and_credits_the_order_after_it(
    settings, database_url, sent
):
    shop, inbox = sent
    assert len(inbox.messages) == 4
    sale, about, pixel = inbox.tracked_paths("p0@example.org")
    assert pixel.startswith("/t/o/")
    assert sale.startswith("/t/c/")
    assert about.startswith("/t/c/")
    unsubscribe = inbox.to("p0@example.org").get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "/unsubscribe/" in unsubscribe, "the unsubscribe link is left as it is"

    shop.clock.set(T0 + timedelta(minutes=3))
    with tracking_app(settings, database_url, shop.clock) as client:
        opened = client.get(pixel, headers={"User-Agent": BROWSER})
        assert opened.status_code == 200
        assert opened.headers["content-type"] == "image/gif"
        assert "no-store" in opened.headers["cache-control"]
        clicked = client.get(sale, headers={"User-Agent": BROWSER})
        assert clicked.status_code == 302
        assert clicked.headers["location"] == SALE
        stored(client, 2)
        assert shop.process() >= 2

        events = shop.events("p0@example.org")
        names = [e.name for e in events]
        assert names.count("Email Opened") == 1
        assert names.count("Email Clicked") == 1
        click = next(e for e in events if e.name == "Email Clicked")
        assert click.properties["url"] == SALE
        assert click.properties["campaign_id"] == str(shop.campaign_id)
        assert click.properties["variant"] in {"A", "B"}

        token = shop.token
        stats = _campaign_stats(client, token, shop.campaign_id)
        totals = stats["stats"]
        assert (totals["recipients"], totals["sent"], totals["delivered"]) == (4, 4, 4)
        assert (totals["opened"], totals["opens"], totals["clicked"], totals["clicks"]) == (
            1,
            1,
            1,
            1,
        )
        assert totals["openRate"] == 0.25
        assert totals["clickToOpenRate"] == 1.0
        assert _variant_of(stats, "opened") == [click.properties["variant"]]

        shop.clock.set(T0 + timedelta(hours=2))
        order = {"order_id": "o-1", "revenue": 42.5, "currency": "EUR"}
        shop.track("p0@example.org", "Order Completed", order, message_id="order-1")
        shop.track("p0@example.org", "Order Completed", order, message_id="order-1-again")
        shop.track("p1@example.org", "Order Completed", {"order_id": "o-2", "revenue": 10},
                   message_id="order-2")  # fmt: skip
        shop.process()
        stats = _campaign_stats(client, token, shop.campaign_id)
        totals = stats["stats"]
        assert (totals["converted"], totals["orders"], totals["revenue"]) == (1, 1, 42.5)
        assert totals["conversionRate"] == 0.25
        assert totals["revenuePerEmail"] == 10.625
        [variant] = [v for v in stats["variants"] if v["stats"]["revenue"]]
        assert variant["name"] == click.properties["variant"]
        assert variant["stats"]["converted"] == 1


def test_a_tampered_token_records_nothing_and_answers_a_plain_404(settings, database_url, sent):
    shop, inbox = sent
    sale, _about, pixel = inbox.tracked_paths("p1@example.org")
    shop.clock.set(T0 + timedelta(minutes=3))
    with tracking_app(settings, database_url, shop.clock) as client:
        for path in (sale, pixel):
            token = path.rsplit("/", 1)[1]
            flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
            response = client.get(path.replace(token, flipped))
            assert response.status_code == 404
            assert response.headers["content-type"].startswith("text/plain")
            assert "location" not in response.headers
        assert client.get("/t/c/not-a-token").status_code == 404
        assert client.get(sale.replace("/t/c/", "/t/o/")).status_code == 404, "kinds differ"
        assert client.head(sale).status_code == 302, "HEAD gets the answer and records nothing"
        assert client.get(pixel, headers={"User-Agent": ""}).status_code == 200
        stored(client, 1)
    shop.process()
    assert [e.name for e in shop.events("p1@example.org", "Email O")] == ["Email Opened"]


def test_an_expired_click_goes_to_the_site_home_page_and_a_foreign_token_gets_a_404(
    settings, database_url, sent
):
    shop, _inbox = sent
    delivery = uuid4()
    old = Tokens(SECRET, lifetime=timedelta(days=365)).click(
        shop.workspace_id,
        delivery,
        0,
        "https://shop.example:8443/sale?x=1",
        T0 - timedelta(days=400),
    )
    foreign = Tokens("another-secret", lifetime=timedelta(days=365)).click(
        shop.workspace_id, delivery, 0, "https://evil.example/", T0
    )
    with tracking_app(settings, database_url, shop.clock) as client:
        expired = client.get(f"/t/c/{old}")
        assert (expired.status_code, expired.headers["location"]) == (
            302,
            "https://shop.example:8443/",
        )
        assert client.get(f"/t/c/{foreign}").status_code == 404
        writer = client.app.state.hits  # type: ignore[attr-defined]
        assert writer.held + writer.stored == 0


def test_the_variant_test_names_the_leader_and_gives_the_test_of_the_variants_counts(
    settings, database_url, sent
):
    shop, inbox = sent
    shop.clock.set(T0 + timedelta(minutes=3))
    with tracking_app(settings, database_url, shop.clock) as client:
        sale, _about, _pixel = inbox.tracked_paths("p0@example.org")
        client.get(sale, headers={"User-Agent": BROWSER})
        stored(client, 1)
        shop.process()
        [click] = shop.events("p0@example.org", "Email Clicked")
        body = gql(client, "query($id: ID!) { campaign(id: $id) { variants { name stats { "
                   'delivered clicked } } variantTest(metric: "click") '
                   "{ metric leader runnerUp pValue significant } } }",
                   {"id": relay.to_base64("Campaign", shop.campaign_id)}, token=shop.token)  # fmt: skip
    campaign = body["data"]["campaign"]
    # The split of four people between A and B depends on the campaign's id.
    arms = [Arm(v["name"], v["stats"]["clicked"], v["stats"]["delivered"])
            for v in campaign["variants"]]  # fmt: skip
    expected = variant_test("click", arms)
    found = campaign["variantTest"]
    assert found["leader"] == click.properties["variant"] == expected.leader
    assert (found["metric"], found["runnerUp"]) == ("click", expected.runner_up)
    assert found["pValue"] == expected.p_value
    # One click among four people can be significant: 1 of 1 against 0 of 3 gives p = 0.046.
    assert found["significant"] is expected.significant
    assert expected.significant is (expected.p_value is not None and expected.p_value < 0.05)


def test_the_stats_of_a_page_of_campaigns_cost_the_same_statements_as_of_one(
    settings, database_url, sent
):
    shop, _inbox = sent
    query = "{ campaigns(first: 10) { edges { node { stats { sent openRate } } } } }"

    async def copy(uow: Any) -> None:
        original = await campaigns.get(uow, shop.campaign_id)
        await campaigns.create(uow, ACTOR, campaigns.CampaignInput(
            f"copy-{uuid4().hex[:6]}", original.segment_id, original.template_id,  # type: ignore[arg-type]
            "newsletter", "news@shop.example",
        ))  # fmt: skip

    def statements(client: Any) -> int:
        counter = StatementCounter()
        engine = client.app.state.cdp.engine.sync_engine
        event.listen(engine, "before_cursor_execute", counter)
        try:
            body = gql(client, query, token=shop.token)
        finally:
            event.remove(engine, "before_cursor_execute", counter)
        assert "errors" not in body, body
        return counter.count

    with tracking_app(settings, database_url, shop.clock) as client:
        one = statements(client)
        shop.uow(copy)
        shop.uow(copy)
        assert statements(client) == one
