"""Recommendation blocks: popular products and recently viewed ones, as the runtime role reads them."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import psycopg
import pytest
from sqlalchemy import event

from cdp import recommendations
from cdp.recommendations import Product
from domain.clock import FrozenClock
from domain.db import WORKSPACE_SETTING, create_engine, session_factory, with_role
from domain.ids import new_id
from domain.uow import UnitOfWork
from tests.conftest import new_workspace
from tests.support import factories
from tests.support.database import APP_ROLE

T = TypeVar("T")
NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)
VIEWED = "Product Viewed"
ORDERED = "Order Completed"

# (profile id, event name, how long before NOW, properties)
Row = tuple[UUID, str, timedelta, dict[str, Any]]


def _seed(database_url: str, ws: UUID, rows: list[Row], *, type: str = "track") -> None:  # noqa: A002
    with factories.seeding(database_url) as db:
        factories.events(
            db, ws, len(rows),
            profile_id=lambda i: rows[i][0],
            name=lambda i: rows[i][1],
            timestamp=lambda i: NOW - rows[i][2],
            properties=lambda i: rows[i][3],
            type=type,
        )  # fmt: skip
        db.commit()


def _run(database_url: str, ws: UUID, work: Callable[[UnitOfWork], Awaitable[T]]) -> tuple[T, int]:
    """`work`'s answer in a unit of work of the runtime role at NOW, and the statements it sent."""
    sent: list[str] = []

    async def run() -> T:
        engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        try:
            sessions = session_factory(engine)
            async with UnitOfWork(sessions, workspace_id=ws, clock=FrozenClock(NOW)) as uow:
                return await work(uow)
        finally:
            await engine.dispose()

    return asyncio.run(run()), len(sent)


def _popular(database_url: str, ws: UUID, **kwargs: Any) -> list[Product]:
    answer, _ = _run(database_url, ws, lambda uow: recommendations.popular(uow, **kwargs))
    return answer


def _viewed(
    database_url: str, ws: UUID, ids: list[UUID], **kwargs: Any
) -> dict[UUID, list[Product]]:
    answer, _ = _run(
        database_url, ws, lambda uow: recommendations.recently_viewed(uow, ids, **kwargs)
    )
    return answer


def _order(*lines: Any) -> dict[str, Any]:
    return {"order_id": new_id().hex, "products": list(lines)}


def _line(product_id: str, **fields: Any) -> dict[str, Any]:
    return {"product_id": product_id, "quantity": 1, **fields}


def _ids(products: list[Product]) -> list[str]:
    return [p.product_id for p in products]


@pytest.fixture
def ws(database_url: str) -> UUID:
    return new_workspace(database_url, "recommendations").workspace.id


# popular


def test_popular_counts_orders_not_views_nor_lines(database_url: str, ws: UUID) -> None:
    buyer, browser = new_id(), new_id()
    day = timedelta(days=1)
    _seed(database_url, ws, [
        (buyer, ORDERED, day, _order(_line("a"), _line("b"))),
        (buyer, ORDERED, 2 * day, _order(_line("a"))),
        # One order naming "c" on three lines is one order.
        (buyer, ORDERED, 3 * day, _order(_line("c"), _line("c"), _line("c"))),
        *[(browser, VIEWED, day, {"product_id": "c"}) for _ in range(5)],
    ])  # fmt: skip

    popular, statements = _run(database_url, ws, recommendations.popular)

    assert _ids(popular) == ["a", "b", "c"]
    assert statements == 1


def test_popular_counts_only_the_last_days(database_url: str, ws: UUID) -> None:
    buyer = new_id()
    _seed(database_url, ws, [
        (buyer, ORDERED, timedelta(days=6, hours=23), _order(_line("recent"))),
        (buyer, ORDERED, timedelta(days=7, hours=1), _order(_line("old"))),
        (buyer, ORDERED, timedelta(days=8), _order(_line("old"))),
        # Dated after the clock's now: not in the window either.
        (buyer, ORDERED, -timedelta(hours=1), _order(_line("future"))),
        (buyer, ORDERED, -timedelta(hours=2), _order(_line("future"))),
    ])  # fmt: skip

    assert _ids(_popular(database_url, ws)) == ["recent"]
    assert _ids(_popular(database_url, ws, days=10)) == ["old", "recent"]


def test_popular_breaks_ties_by_product_id_and_stops_at_the_limit(
    database_url: str, ws: UUID
) -> None:
    buyer = new_id()
    _seed(database_url, ws, [
        (buyer, ORDERED, timedelta(hours=1), _order(_line("m"), _line("b"), _line("z"))),
        (buyer, ORDERED, timedelta(hours=2), _order(_line("k"), _line("q"))),
        (buyer, ORDERED, timedelta(hours=3), _order(_line("q"))),
    ])  # fmt: skip

    assert _ids(_popular(database_url, ws)) == ["q", "b", "k", "m"]
    assert _ids(_popular(database_url, ws, limit=2)) == ["q", "b"]


def test_popular_takes_the_fields_of_the_latest_order_line(database_url: str, ws: UUID) -> None:
    buyer = new_id()
    old = {"name": "Old mug", "price": 9, "url": "https://shop/old", "image_url": "https://img/old"}
    new = {
        "name": "New mug",
        "price": "12.50",
        "url": "https://shop/mug",
        "image_url": "https://img/mug",
    }
    _seed(database_url, ws, [
        (buyer, ORDERED, timedelta(days=3), _order(_line("mug", **old))),
        (buyer, ORDERED, timedelta(days=1), _order(_line("mug", **new))),
        (buyer, ORDERED, timedelta(days=2), _order(_line("mug", **old), _line("cup", price=4))),
    ])  # fmt: skip

    mug, cup = _popular(database_url, ws)

    assert mug.as_dict() == {"product_id": "mug", **new}
    assert cup == Product("cup", name=None, price=4.0, url=None, image_url=None)


def test_popular_keys_lines_by_sku_when_the_product_id_is_missing(
    database_url: str, ws: UUID
) -> None:
    buyer = new_id()
    _seed(database_url, ws, [
        (buyer, ORDERED, timedelta(hours=1), _order(
            {"sku": "SKU-1", "name": "By sku"},
            {"name": "Nameless, no id"},
            {"product_id": 42},
            "not an object",
        )),
        (buyer, ORDERED, timedelta(hours=2), _order({"product_id": "", "sku": "SKU-1"})),
        (buyer, ORDERED, timedelta(hours=3), {"products": {"product_id": "not-a-list"}}),
        (buyer, ORDERED, timedelta(hours=4), {}),
    ])  # fmt: skip

    popular = _popular(database_url, ws)

    assert _ids(popular) == ["SKU-1", "42"]
    assert popular[0].name == "By sku"


def test_popular_sees_only_its_workspace(database_url: str, ws: UUID) -> None:
    other = new_workspace(database_url, "other").workspace.id
    buyer = new_id()
    _seed(database_url, ws, [(buyer, ORDERED, timedelta(hours=1), _order(_line("mine")))])
    _seed(database_url, other, [
        (buyer, ORDERED, timedelta(hours=1), _order(_line("theirs"), _line("mine")))
        for _ in range(3)
    ])  # fmt: skip

    assert _ids(_popular(database_url, ws)) == ["mine"]
    assert _ids(_popular(database_url, other)) == ["mine", "theirs"]


def test_popular_only_counts_track_calls(database_url: str, ws: UUID) -> None:
    buyer = new_id()
    _seed(
        database_url,
        ws,
        [(buyer, ORDERED, timedelta(hours=1), _order(_line("paged")))],
        type="page",
    )

    assert _popular(database_url, ws) == []


def test_popular_reads_only_orders_through_their_own_index(database_url: str, ws: UUID) -> None:
    """Other events, however many, are not read: not even the campaign's `Email Delivered`."""
    shopper = new_id()
    _seed(database_url, ws, [
        (shopper, name, timedelta(days=d), {"products": [_line("p1")]})
        for name in (ORDERED, VIEWED, "Email Delivered") for d in (1, 40)
    ])  # fmt: skip
    params = {"ws": ws, "since": NOW - timedelta(days=7), "now": NOW, "limit": 4}
    plan = _indexable_plan(database_url, ws, recommendations._POPULAR, params)

    scans = _event_scans(plan["Plan"])
    assert scans
    for scan, _ in scans:
        assert scan["Node Type"] in ("Index Scan", "Bitmap Heap Scan")
    names = json.dumps(plan)
    assert names.count("workspace_id_timestamp_idx") == len(scans)


@pytest.mark.parametrize(
    "kwargs", [{"limit": 0}, {"limit": 21}, {"days": 0}, {"days": 366}, {"limit": True}]
)
def test_popular_refuses_bounds_out_of_range(
    database_url: str, ws: UUID, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="must be from 1 to"):
        _popular(database_url, ws, **kwargs)


# recently_viewed


def test_recently_viewed_lists_distinct_products_newest_first(database_url: str, ws: UUID) -> None:
    shopper = new_id()
    _seed(database_url, ws, [
        (shopper, VIEWED, timedelta(hours=5), {"product_id": "lamp", "name": "Old lamp"}),
        (shopper, VIEWED, timedelta(hours=4), {"product_id": "rug", "price": 30.5}),
        (shopper, VIEWED, timedelta(hours=3), {"product_id": "chair"}),
        (shopper, VIEWED, timedelta(hours=1), {
            "product_id": "lamp", "name": "Lamp", "price": 20, "url": "https://shop/lamp",
            "image_url": "https://img/lamp", "category": "Lighting",
        }),
        (shopper, ORDERED, timedelta(minutes=1), _order(_line("sofa"))),
        (shopper, "Product Added", timedelta(minutes=2), {"product_id": "stool"}),
    ])  # fmt: skip

    answer, statements = _run(
        database_url, ws, lambda uow: recommendations.recently_viewed(uow, [shopper])
    )

    assert answer == {
        shopper: [
            Product("lamp", "Lamp", 20.0, "https://shop/lamp", "https://img/lamp"),
            Product("chair", None, None, None, None),
            Product("rug", None, 30.5, None, None),
        ]
    }
    assert statements == 1


def test_recently_viewed_answers_every_profile_within_the_limit(
    database_url: str, ws: UUID
) -> None:
    many, few, none = new_id(), new_id(), new_id()
    _seed(database_url, ws, [
        *[(many, VIEWED, timedelta(hours=h), {"product_id": f"p{h}"}) for h in range(1, 8)],
        (few, VIEWED, timedelta(hours=1), {"product_id": "only"}),
        (none, ORDERED, timedelta(hours=1), _order(_line("bought"))),
    ])  # fmt: skip
    unknown = new_id()

    answer = _viewed(database_url, ws, [unknown, many, few, none, many])

    assert answer == {
        unknown: [],
        many: [Product(f"p{h}", None, None, None, None) for h in range(1, 5)],
        few: [Product("only", None, None, None, None)],
        none: [],
    }
    assert _ids(_viewed(database_url, ws, [many], limit=6)[many]) == [f"p{h}" for h in range(1, 7)]
    assert _viewed(database_url, ws, []) == {}


def test_recently_viewed_never_shows_another_workspaces_events(database_url: str, ws: UUID) -> None:
    other = new_workspace(database_url, "other").workspace.id
    shopper = new_id()
    # Events have no foreign key to profiles: the same profile id can hold events in both.
    _seed(database_url, ws, [(shopper, VIEWED, timedelta(hours=2), {"product_id": "mine"})])
    _seed(database_url, other, [(shopper, VIEWED, timedelta(hours=1), {"product_id": "theirs"})])

    assert _ids(_viewed(database_url, ws, [shopper])[shopper]) == ["mine"]
    assert _ids(_viewed(database_url, other, [shopper])[shopper]) == ["theirs"]


def test_recently_viewed_falls_back_to_the_sku_and_skips_products_without_either(
    database_url: str, ws: UUID
) -> None:
    shopper = new_id()
    _seed(database_url, ws, [
        (shopper, VIEWED, timedelta(hours=4), {"sku": "SKU-9", "name": "By sku"}),
        (shopper, VIEWED, timedelta(hours=3), {"product_id": "", "sku": ""}),
        (shopper, VIEWED, timedelta(hours=2), {"product_id": {"nested": 1}, "name": "Odd"}),
        (shopper, VIEWED, timedelta(hours=1), {"name": "No id at all", "price": 5}),
    ])  # fmt: skip

    assert _viewed(database_url, ws, [shopper]) == {
        shopper: [Product("SKU-9", "By sku", None, None, None)]
    }


def test_recently_viewed_reads_a_bounded_number_of_views_per_profile(
    database_url: str, ws: UUID
) -> None:
    shopper = new_id()
    read = recommendations.VIEWS_READ
    _seed(database_url, ws, [
        *[(shopper, VIEWED, timedelta(minutes=m), {"product_id": "again"}) for m in range(1, read + 1)],
        (shopper, VIEWED, timedelta(days=1), {"product_id": "older"}),
    ])  # fmt: skip

    assert _ids(_viewed(database_url, ws, [shopper])[shopper]) == ["again"]


def _indexable_plan(database_url: str, ws: UUID, sql: str, params: dict[str, Any]) -> Any:
    """The JSON plan of `sql` as the runtime role gets it, sequential scans off: on tables this
    small a scan can be cheaper, and the question is whether the indexes serve."""
    with psycopg.connect(with_role(database_url, APP_ROLE), autocommit=True) as conn:
        conn.execute("SELECT set_config(%s, %s, false)", (WORKSPACE_SETTING, str(ws)))
        conn.execute("SET enable_seqscan = off")
        [[[plan]]] = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params, prepare=False).fetchall()
    return plan


def _event_scans(
    node: dict[str, Any], above: tuple[str, ...] = ()
) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    """Each plan node that reads an events partition, with the node types above it."""
    found = [(node, above)] if node.get("Relation Name", "").startswith("events") else []
    for child in node.get("Plans", []):
        found += _event_scans(child, (*above, node["Node Type"]))
    return found


def test_recently_viewed_probes_each_profiles_newest_views_through_the_index(
    database_url: str, ws: UUID
) -> None:
    shoppers = [new_id() for _ in range(3)]
    _seed(database_url, ws, [
        (s, VIEWED, timedelta(days=d), {"product_id": f"p{d}"}) for s in shoppers for d in (1, 40)
    ])  # fmt: skip
    params = {"ws": ws, "ids": shoppers, "read": recommendations.VIEWS_READ, "limit": 4}
    plan = _indexable_plan(database_url, ws, recommendations._RECENTLY_VIEWED, params)

    scans = _event_scans(plan["Plan"])
    assert len(scans) >= 2  # one per month's partition
    for scan, above in scans:
        assert scan["Node Type"] == "Index Scan"
        assert scan["Index Name"].endswith("profile_id_timestamp_idx")
        assert scan["Scan Direction"] == "Backward"
        # The newest views come in index order, and the limit stops the reading.
        below_limit = above[len(above) - above[::-1].index("Limit") :]
        assert "Sort" not in below_limit
        assert "Nested Loop" in above[: len(above) - len(below_limit)]


@pytest.mark.parametrize("limit", [0, 21])
def test_recently_viewed_refuses_a_limit_out_of_range(
    database_url: str, ws: UUID, limit: int
) -> None:
    with pytest.raises(ValueError, match="must be from 1 to 20"):
        _viewed(database_url, ws, [new_id()], limit=limit)
