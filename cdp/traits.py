"""Traits and computed traits, folded in memory (no I/O).

A trait keeps the value from the latest *event time* that set it, with its
source, so events that arrive out of order cannot roll a trait back.
Computed traits follow the Segment e-commerce spec events incrementally.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

PRODUCT_FIELDS = (
    "product_id", "sku", "name", "price", "quantity", "category", "brand", "variant", "url",
    "image_url",
)  # fmt: skip

PRODUCT_VIEWED = "Product Viewed"
PRODUCT_ADDED = "Product Added"
PRODUCT_REMOVED = "Product Removed"
CART_VIEWED = "Cart Viewed"
CHECKOUT_STARTED = "Checkout Started"
ORDER_COMPLETED = "Order Completed"


# Events the server records about what it did to a profile (a message delivered or
# bounced), registered by the context that records them: they are stored, but they
# are not the person's activity, so they move neither `first_seen` nor `last_seen`.
_NOT_ACTIVITY: set[str] = set()


def not_activity(*names: str) -> None:
    _NOT_ACTIVITY.update(names)


def is_activity(name: str | None) -> bool:
    return name not in _NOT_ACTIVITY


# A bulk upsert stamps every item with the same time; formatting it once per
# item was a measurable part of a batch.
@lru_cache(maxsize=256)
def stamp(at: datetime) -> str:
    """A sortable UTC timestamp: equal formats compare correctly as strings."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


_ABSENT = object()


@dataclass
class ProfileState:
    traits: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, dict[str, str]] = field(default_factory=dict)
    computed: dict[str, Any] = field(default_factory=dict)
    # A data subject's restriction of processing (GDPR Art. 18): what arrives is
    # stored, but traits and computed traits stay as they were until it is lifted.
    restricted: bool = False
    # Whether `apply_traits` changed a value, so that derived state (segments) is told.
    traits_changed: bool = field(default=False, compare=False)
    # The traits, their meta, the computed traits and the restriction as read from the
    # profile row; the folds never change those dicts in place (they assign into copies).
    read: tuple[dict[str, Any], dict[str, Any], dict[str, Any], bool] | None = field(
        default=None, compare=False, repr=False
    )

    @classmethod
    def from_row(
        cls, traits: dict[str, Any], meta: dict[str, Any], computed: dict[str, Any], *,
        restricted: bool,
    ) -> "ProfileState":  # fmt: skip
        """The state of a stored profile, which remembers what was read."""
        return cls(dict(traits), dict(meta), dict(computed), restricted=restricted,
                   read=(traits, meta, computed, restricted))  # fmt: skip

    def unchanged(self) -> bool:
        """Whether this is a stored profile's state with nothing folded into it since it was
        read: writing it back would change nothing but the row's version and time."""
        now = (self.traits, self.meta, self.computed, self.restricted)
        return self.read is not None and now == self.read

    def apply_traits(self, traits: dict[str, Any], at: datetime, source: str) -> None:
        when = stamp(at)
        for key, value in traits.items():
            current = self.meta.get(key)
            if current is None or current.get("at", "") <= when:
                if not self.traits_changed and (
                    key not in self.traits or self.traits[key] != value
                ):
                    self.traits_changed = True
                self.traits[key] = value
                self.meta[key] = {"at": when, "source": source}

    def apply_event(self, name: str | None, properties: dict[str, Any], at: datetime) -> None:
        if not is_activity(name):
            return
        when = stamp(at)
        c = self.computed
        c["first_seen"] = min(c.get("first_seen", when), when)
        c["last_seen"] = max(c.get("last_seen", when), when)
        if name == PRODUCT_VIEWED:
            self._latest("last_product_viewed", {"at": when, "product": _product(properties)})
        elif name == PRODUCT_ADDED:
            self._cart_change(
                when, lambda items: [*_without(items, properties), _product(properties)]
            )
        elif name == PRODUCT_REMOVED:
            self._cart_change(when, lambda items: _without(items, properties))
        elif name in (CART_VIEWED, CHECKOUT_STARTED):
            products = properties.get("products")
            if isinstance(products, list):
                items = [_product(p) for p in products if isinstance(p, dict)]
                self._cart_change(when, lambda _: items)
            if name == CHECKOUT_STARTED:
                c["last_checkout_started_at"] = max(c.get("last_checkout_started_at", when), when)
        elif name == ORDER_COMPLETED:
            c["order_count"] = int(c.get("order_count", 0)) + 1
            c["total_revenue"] = round(float(c.get("total_revenue", 0.0)) + _revenue(properties), 2)
            c["last_order_at"] = max(c.get("last_order_at", when), when)
            c["average_order_value"] = round(c["total_revenue"] / c["order_count"], 2)
            self._cart_change(when, lambda _: [])

    def _latest(self, key: str, value: dict[str, Any]) -> None:
        current = self.computed.get(key)
        if not isinstance(current, dict) or current.get("at", "") <= value["at"]:
            self.computed[key] = value

    def _cart_change(self, when: str, change: Any) -> None:
        cart = self.computed.get("cart")
        if isinstance(cart, dict) and cart.get("at", "") > when:
            return  # an older event arriving late does not undo a newer cart
        items = cart.get("items", []) if isinstance(cart, dict) else []
        self.computed["cart"] = {"at": when, "items": change(items)}

    def absorb(self, other: "ProfileState") -> None:
        """Fold a merged-away profile into this one; a restriction follows the person."""
        self.restricted = self.restricted or other.restricted
        for key, value in other.traits.items():
            theirs = other.meta.get(key, {"at": "", "source": "merge"})
            ours = self.meta.get(key)
            if ours is None or ours.get("at", "") < theirs.get("at", ""):
                self.traits[key] = value
                self.meta[key] = theirs
        mine, theirs_c = self.computed, other.computed
        for key in ("first_seen",):
            if key in theirs_c:
                mine[key] = min(mine.get(key, theirs_c[key]), theirs_c[key])
        for key in ("last_seen", "last_order_at", "last_checkout_started_at"):
            if key in theirs_c:
                mine[key] = max(mine.get(key, theirs_c[key]), theirs_c[key])
        for key in ("last_product_viewed", "cart"):
            if isinstance(theirs_c.get(key), dict):
                self._latest(key, theirs_c[key])
        if theirs_c.get("order_count"):
            mine["order_count"] = int(mine.get("order_count", 0)) + int(theirs_c["order_count"])
            mine["total_revenue"] = round(
                float(mine.get("total_revenue", 0.0)) + float(theirs_c.get("total_revenue", 0.0)), 2
            )
            mine["average_order_value"] = round(mine["total_revenue"] / mine["order_count"], 2)


def _product(properties: dict[str, Any]) -> dict[str, Any]:
    return {k: properties[k] for k in PRODUCT_FIELDS if k in properties}


def _key(product: dict[str, Any]) -> Any:
    return product.get("product_id") or product.get("sku") or product.get("name")


def _without(items: list[dict[str, Any]], properties: dict[str, Any]) -> list[dict[str, Any]]:
    key = _key(properties)
    return [item for item in items if _key(item) != key]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _revenue(properties: dict[str, Any]) -> float:
    for key in ("revenue", "total"):
        amount = _number(properties.get(key))
        if amount is not None:
            return amount
    total = 0.0
    for product in properties.get("products") or []:
        if isinstance(product, dict):
            price = _number(product.get("price")) or 0.0
            quantity = _number(product.get("quantity"))
            total += price * (quantity if quantity is not None else 1.0)
    return total


RFM_THRESHOLDS = {
    "recency_days": (7, 30, 90, 180),  # at most this many days since the last order
    "frequency": (1, 2, 4, 9),  # more than this many orders
    "monetary": (0, 50, 200, 1000),  # more than this total revenue
}


def rfm(computed: dict[str, Any], now: datetime) -> dict[str, int] | None:
    """Recency, frequency and monetary scores from 1 (low) to 5 (high), or None before any order."""
    count = int(computed.get("order_count", 0))
    last = computed.get("last_order_at")
    if not count or not last:
        return None
    days = (now - datetime.fromisoformat(last)).total_seconds() / 86400
    recency = 5 - sum(days > t for t in RFM_THRESHOLDS["recency_days"])
    frequency = 1 + sum(count > t for t in RFM_THRESHOLDS["frequency"])
    revenue = float(computed.get("total_revenue", 0.0))
    monetary = 1 + sum(revenue > t for t in RFM_THRESHOLDS["monetary"])
    return {"recency": recency, "frequency": min(frequency, 5), "monetary": min(monetary, 5)}
