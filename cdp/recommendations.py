"""The queries behind email recommendation blocks: popular products, and a profile's recent views.

Products come from events in the Segment e-commerce spec: "Product Viewed"
carries one product in its properties, "Order Completed" a list of them in
`properties.products`. A product is known by its `product_id`, else by its
`sku`; a product with neither is skipped.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from domain.uow import UnitOfWork

MAX_LIMIT = 20
MAX_DAYS = 365
# How many of a profile's newest "Product Viewed" events are read to find its
# distinct products: a bound on the work per recipient, whatever its history.
VIEWS_READ = 50

# The product's key in the JSON object `x`: its product_id, else its sku, when
# either is a non-empty string or a number.
_KEY = (
    "coalesce("
    "CASE WHEN jsonb_typeof(x->'product_id') IN ('string', 'number') THEN nullif(x->>'product_id', '') END, "
    "CASE WHEN jsonb_typeof(x->'sku') IN ('string', 'number') THEN nullif(x->>'sku', '') END)"
)
_FIELDS = "x->'name' AS name, x->'price' AS price, x->'url' AS url, x->'image_url' AS image_url"

# Each order counts once for a product, however many lines name it. The
# fields come from the newest line of each of the top products only.
_POPULAR = (
    "WITH lines AS MATERIALIZED ("  # noqa: S608 - constant SQL
    f" SELECT e.id AS event_id, e.timestamp, l.n, {_KEY} AS product_id, l.x"
    " FROM events e CROSS JOIN LATERAL jsonb_array_elements("
    "  CASE jsonb_typeof(e.properties->'products') WHEN 'array' THEN e.properties->'products' END"
    " ) WITH ORDINALITY AS l(x, n)"
    " WHERE e.workspace_id = %(ws)s AND e.type = 'track' AND e.name = 'Order Completed'"
    " AND e.timestamp > %(since)s AND e.timestamp <= %(now)s), "
    "top AS (SELECT product_id, count(DISTINCT event_id) AS orders FROM lines"
    " WHERE product_id IS NOT NULL GROUP BY product_id"
    " ORDER BY orders DESC, product_id LIMIT %(limit)s), "
    "latest AS (SELECT DISTINCT ON (product_id) product_id, x FROM lines"
    " WHERE product_id IN (SELECT product_id FROM top)"
    " ORDER BY product_id, timestamp DESC, event_id DESC, n DESC) "
    f"SELECT t.product_id, {_FIELDS} FROM top t JOIN latest USING (product_id)"
    " ORDER BY t.orders DESC, t.product_id"
)

# A probe per profile, newest first through (workspace_id, profile_id,
# timestamp), stopping after VIEWS_READ views; of those, each product's newest
# view, and the newest `limit` of them.
_RECENTLY_VIEWED = (
    "SELECT b.id AS profile_id, v.product_id, v.name, v.price, v.url, v.image_url"  # noqa: S608 - constant SQL
    " FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS b(id, n) CROSS JOIN LATERAL ("
    "  SELECT d.* FROM ("
    f"   SELECT DISTINCT ON (product_id) product_id, timestamp, id, {_FIELDS} FROM ("
    f"    SELECT r.timestamp, r.id, {_KEY} AS product_id, x FROM ("
    "     SELECT e.timestamp, e.id, e.properties AS x FROM events e"
    "     WHERE e.workspace_id = %(ws)s AND e.profile_id = b.id"
    "     AND e.type = 'track' AND e.name = 'Product Viewed'"
    "     ORDER BY e.timestamp DESC LIMIT %(read)s) r) viewed"
    "   WHERE product_id IS NOT NULL"
    "   ORDER BY product_id, timestamp DESC, id DESC) d"
    "  ORDER BY d.timestamp DESC, d.id DESC LIMIT %(limit)s) v"
    " ORDER BY b.n, v.timestamp DESC, v.id DESC"
)


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str | None
    price: float | str | None
    url: str | None
    image_url: str | None

    def as_dict(self) -> dict[str, Any]:
        """What an email template receives for the product."""
        return {
            "product_id": self.product_id,
            "name": self.name,
            "price": self.price,
            "url": self.url,
            "image_url": self.image_url,
        }


async def popular(uow: UnitOfWork, *, limit: int = 4, days: int = 7) -> list[Product]:
    """The workspace's products in the most orders of the last `days` days; ties by product_id."""
    _check("limit", limit, MAX_LIMIT)
    _check("days", days, MAX_DAYS)
    now = uow.clock.now()
    params = {
        "ws": uow.workspace_id,
        "since": now - timedelta(days=days),
        "now": now,
        "limit": limit,
    }
    return [_product(row) for row in await uow.fetch(_POPULAR, params)]


async def recently_viewed(
    uow: UnitOfWork, profile_ids: Sequence[UUID], *, limit: int = 4
) -> dict[UUID, list[Product]]:
    """Each profile's most recently viewed distinct products, newest first; [] for none."""
    _check("limit", limit, MAX_LIMIT)
    answer: dict[UUID, list[Product]] = {pid: [] for pid in profile_ids}
    if not answer:
        return answer
    params = {"ws": uow.workspace_id, "ids": list(answer), "read": VIEWS_READ, "limit": limit}
    for row in await uow.fetch(_RECENTLY_VIEWED, params):
        answer[row.profile_id].append(_product(row))
    return answer


def _check(name: str, value: int, most: int) -> None:
    if isinstance(value, bool) or not 1 <= value <= most:
        raise ValueError(f"{name} must be from 1 to {most}, not {value!r}")


def _product(row: Any) -> Product:
    return Product(
        product_id=row.product_id,
        name=_text(row.name),
        price=_price(row.price),
        url=_text(row.url),
        image_url=_text(row.image_url),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _price(value: Any) -> float | str | None:
    # Senders send prices as JSON numbers or as strings ("19.99"); either is kept.
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return _text(value)
