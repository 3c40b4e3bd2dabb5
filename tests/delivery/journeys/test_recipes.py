"""Each recipe, made and simulated for a sample profile, gives the timeline its scenario promises."""

from datetime import UTC, datetime
from typing import Any

import pytest

from delivery.journeys import recipes, services
from domain.clock import FrozenClock
from domain.uow import UnitOfWork
from tests.delivery.journeys.support import ACTOR, Shop, shop
from tests.delivery.journeys.test_simulation import _simulate

HOUR, DAY = 3600, 86400


def _recipe(s: Shop, recipe: str) -> Any:
    async def make(uow: UnitOfWork) -> Any:
        row = await recipes.create(uow, ACTOR, recipe, "hello@shop.example")
        return row, await services.current_definition(uow, row)

    return s.uow(make)


def _sends(result: dict[str, Any]) -> list[tuple[int, str]]:
    return [(e["offsetSeconds"], e["outcome"]) for e in result["timeline"] if e["kind"] == "send"]


@pytest.fixture
def sample(database_url: str) -> Shop:
    # Wednesday 4 March 2026, 10:00 UTC; ada turns a year older on the 6th.
    clock = FrozenClock(datetime(2026, 3, 4, 10, tzinfo=UTC))
    return shop(database_url, {"ada": True}, clock=clock, name="recipes",
                traits={"ada": {"birthday": "1990-03-06", "timezone": "Europe/Berlin"}})  # fmt: skip


def test_abandoned_cart_reminds_at_1_24_and_72_hours_and_stops_on_a_purchase(sample):
    row, definition = _recipe(sample, "ABANDONED_CART")
    assert row.status == "DRAFT"
    full = _simulate(sample, definition, "ada", [{"event": "Product Added"}])
    assert _sends(full) == [(HOUR, "would send"), (24 * HOUR, "would send"),
                            (72 * HOUR, "would send")]  # fmt: skip
    assert full["outcome"] == "COMPLETED"
    bought = _simulate(sample, definition, "ada", [
        {"event": "Product Added"}, {"event": "Order Completed", "after": {"hours": 5}}])  # fmt: skip
    assert _sends(bought) == [(HOUR, "would send")]
    assert (bought["outcome"], bought["converted"]) == ("EXITED", True)


def test_browse_abandonment_reminds_at_30_minutes_unless_the_product_is_added(sample):
    _row, definition = _recipe(sample, "BROWSE_ABANDONMENT")
    viewed = _simulate(sample, definition, "ada", [{"event": "Product Viewed"}])
    assert _sends(viewed) == [(30 * 60, "would send")]
    added = _simulate(sample, definition, "ada", [
        {"event": "Product Viewed"}, {"event": "Product Added", "after": {"minutes": 10}}])  # fmt: skip
    assert (_sends(added), added["outcome"]) == ([], "EXITED")


def test_welcome_and_post_purchase_send_on_their_events(sample):
    _row, welcome = _recipe(sample, "WELCOME")
    assert _sends(_simulate(sample, welcome, "ada", [{"event": "Signed Up"}])) == [
        (0, "would send")
    ]
    never = _simulate(sample, welcome, "ada", [{"event": "Page Viewed"}])
    assert never["outcome"] == "NOT_ENTERED"
    _row, thanks = _recipe(sample, "POST_PURCHASE")
    assert _sends(_simulate(sample, thanks, "ada", [{"event": "Order Completed"}])) == [
        (HOUR, "would send")
    ]


def test_birthday_sends_at_nine_local_on_the_day_and_win_back_after_silence(sample):
    _row, birthday = _recipe(sample, "BIRTHDAY")
    result = _simulate(sample, birthday, "ada")
    [send] = [e for e in result["timeline"] if e["kind"] == "send"]
    # 09:00 in Berlin on 6 March is 08:00 UTC.
    assert (send["at"], send["outcome"]) == ("2026-03-06T08:00:00+00:00", "would send")
    _row, win_back = _recipe(sample, "WIN_BACK")
    assert _sends(_simulate(sample, win_back, "ada")) == [(0, "would send")]
