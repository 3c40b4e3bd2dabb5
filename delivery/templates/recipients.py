"""A recipient's data for templates, loaded for a batch of profiles in a few statements."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cdp import queries, recommendations
from cdp.segments import repository as segment_store
from consent import links
from consent.keys import Keys
from delivery.templates.model import Recipient, RecipientProfile
from domain.uow import UnitOfWork

# Stored computed traits under the GraphQL names templates use (API.md).
_COMPUTED = {
    "first_seen": "firstSeen",
    "last_seen": "lastSeen",
    "order_count": "orderCount",
    "total_revenue": "totalRevenue",
    "average_order_value": "averageOrderValue",
    "last_order_at": "lastOrderAt",
}


def template_computed(stored: Mapping[str, Any]) -> dict[str, Any]:
    """`profile.computed` as templates see it: GraphQL names, the cart's items, the last product."""
    found = {name: stored[key] for key, name in _COMPUTED.items() if key in stored}
    found.setdefault("orderCount", 0)
    found.setdefault("totalRevenue", 0)
    cart = stored.get("cart")
    found["cart"] = cart.get("items", []) if isinstance(cart, dict) else []
    viewed = stored.get("last_product_viewed")
    if isinstance(viewed, dict) and isinstance(viewed.get("product"), dict):
        found["lastProductViewed"] = viewed["product"]
    return found


@dataclass(frozen=True)
class LinkMaker:
    """The signed unsubscribe and preference-centre links of a recipient (consent.links)."""

    keys: Keys
    base_url: str

    def unsubscribe(self, workspace_id: UUID, profile_id: UUID, *, purpose: str) -> str:
        token = links.unsubscribe_token(
            self.keys, workspace_id, profile_id, channel="email", purpose=purpose
        )
        return f"{self.base_url.rstrip('/')}/unsubscribe/{token}"

    def preferences(self, workspace_id: UUID, profile_id: UUID) -> str:
        token = links.preferences_token(self.keys, workspace_id, profile_id)
        return f"{self.base_url.rstrip('/')}/preferences/{token}"


async def load(
    uow: UnitOfWork,
    profile_ids: Sequence[UUID],
    *,
    purpose: str,
    links_for: LinkMaker,
    event: Mapping[str, Any] | None = None,
    recommending: bool = True,
) -> dict[UUID, Recipient]:
    """Each asked profile's data for a message of `purpose`, by the id asked; a merged-away id
    gets its survivor's data, and a missing profile is left out."""
    found_rows = await queries.profiles_by_id(uow, profile_ids)
    survivors = sorted({row.id for row in found_rows.values()})
    memberships = await segment_store.segments_of(uow, survivors)
    segment_ids = sorted({s for ids in memberships.values() for s in ids})
    names = {row.id: row.name for row in (await segment_store.get_many(uow, segment_ids)).values()}
    # Only for a template that reads them: the popular products read a week of orders.
    viewed = await recommendations.recently_viewed(uow, survivors) if recommending else {}
    popular = [p.as_dict() for p in await recommendations.popular(uow)] if recommending else []
    found: dict[UUID, Recipient] = {}
    for asked, row in found_rows.items():
        profile = RecipientProfile(
            str(row.id),
            row.traits,
            template_computed(row.computed),
            [names[s] for s in memberships.get(row.id, []) if s in names],
        )
        found[asked] = Recipient(
            profile,
            unsubscribe_url=links_for.unsubscribe(uow.workspace_id, row.id, purpose=purpose),
            preferences_url=links_for.preferences(uow.workspace_id, row.id),
            event=event,
            recommendations={
                "recently_viewed": [p.as_dict() for p in viewed.get(row.id, [])],
                "popular": popular,
            },
        )
    return found


def from_data(data: Mapping[str, Any]) -> Recipient:
    """A recipient made of sample data (`preview(data:)`), in the shape templates see."""
    profile = _mapping(data.get("profile"))
    segments = profile.get("segments")
    return Recipient(
        RecipientProfile(
            str(profile.get("id", "sample-profile")),
            _mapping(profile.get("traits")),
            _mapping(profile.get("computed")),
            [str(s) for s in segments] if isinstance(segments, list) else [],
        ),
        unsubscribe_url=str(data.get("unsubscribe_url", "https://example.com/unsubscribe/sample")),
        preferences_url=str(data.get("preferences_url", "https://example.com/preferences/sample")),
        event=_mapping(data.get("event")),
        recommendations=_mapping(data.get("recommendations")),
    )


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}
