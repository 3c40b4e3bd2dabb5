"""Traits resolve by event time; computed traits follow e-commerce events."""

from datetime import UTC, datetime, timedelta

from cdp.traits import ProfileState, rfm

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_later_event_time_wins_whatever_the_arrival_order():
    state = ProfileState()
    state.apply_traits({"plan": "pro", "name": "Ann"}, T0 + timedelta(hours=1), "identify")
    state.apply_traits({"plan": "free"}, T0, "identify")  # arrives late, happened earlier
    assert state.traits == {"plan": "pro", "name": "Ann"}
    assert state.meta["plan"]["source"] == "identify"
    state.apply_traits({"plan": "team"}, T0 + timedelta(hours=2), "api")
    assert state.traits["plan"] == "team"
    assert state.meta["plan"]["source"] == "api"


def test_ecommerce_events_update_computed_traits():
    state = ProfileState()
    state.apply_event("Product Viewed", {"product_id": "p1", "name": "Mug", "price": 9}, T0)
    state.apply_event(
        "Product Added",
        {"product_id": "p1", "name": "Mug", "price": 9, "quantity": 2},
        T0 + timedelta(minutes=1),
    )
    state.apply_event(
        "Product Added", {"product_id": "p2", "name": "Tea", "price": 4}, T0 + timedelta(minutes=2)
    )
    state.apply_event("Product Removed", {"product_id": "p2"}, T0 + timedelta(minutes=3))
    c = state.computed
    assert c["last_product_viewed"]["product"]["product_id"] == "p1"
    assert [i["product_id"] for i in c["cart"]["items"]] == ["p1"]
    state.apply_event("Order Completed", {"revenue": 18.0}, T0 + timedelta(minutes=5))
    state.apply_event(
        "Order Completed", {"products": [{"price": 10, "quantity": 3}]}, T0 + timedelta(days=1)
    )
    assert c["order_count"] == 2
    assert c["total_revenue"] == 48.0
    assert c["average_order_value"] == 24.0
    assert c["cart"]["items"] == []
    assert c["first_seen"] < c["last_seen"] == c["last_order_at"]


def test_late_cart_event_does_not_undo_a_newer_cart():
    state = ProfileState()
    state.apply_event("Order Completed", {"revenue": 5}, T0 + timedelta(hours=1))
    state.apply_event("Product Added", {"product_id": "old"}, T0)
    assert state.computed["cart"]["items"] == []


def test_absorbing_a_merged_profile():
    a, b = ProfileState(), ProfileState()
    a.apply_traits({"name": "Ann"}, T0, "identify")
    b.apply_traits({"name": "Annie", "city": "Oslo"}, T0 + timedelta(hours=1), "identify")
    a.apply_event("Order Completed", {"revenue": 10}, T0)
    b.apply_event("Order Completed", {"revenue": 30}, T0 - timedelta(days=3))
    a.absorb(b)
    assert a.traits == {"name": "Annie", "city": "Oslo"}
    assert a.computed["order_count"] == 2
    assert a.computed["total_revenue"] == 40.0
    assert a.computed["average_order_value"] == 20.0
    assert a.computed["first_seen"] == b.computed["first_seen"]


def test_rfm_scores():
    state = ProfileState()
    assert rfm(state.computed, T0) is None
    for day in range(5):
        state.apply_event("Order Completed", {"revenue": 300}, T0 - timedelta(days=day))
    assert rfm(state.computed, T0 + timedelta(days=1)) == {
        "recency": 5,
        "frequency": 4,
        "monetary": 5,
    }
    assert rfm(state.computed, T0 + timedelta(days=400))["recency"] == 1


def test_a_restriction_follows_the_person_through_a_merge():
    survivor, restricted = ProfileState(), ProfileState(restricted=True)
    survivor.absorb(restricted)
    assert survivor.restricted is True
    assert ProfileState(restricted=True).restricted
    free = ProfileState()
    free.absorb(ProfileState())
    assert free.restricted is False
