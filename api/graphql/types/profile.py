"""Profiles in GraphQL: traits, computed traits, merges and consent, and the upsert input."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info
from strawberry.types.arguments import InputContext
from strawberry.types.base import get_object_definition

from api.graphql import connection, loaders
from api.graphql.nodes import load_nodes
from api.graphql.scalars import JSON
from api.graphql.types.consent import Consent, Contactability
from api.graphql.types.event import EventNode, encode_event_cursor, event_page
from api.graphql.types.group import ProfileGroup
from api.graphql.types.identity import IdentifierInput, Identity, IdentityConflictNode
from cdp import profiles as profile_service
from cdp import queries
from cdp.model import Identifier
from cdp.traits import rfm
from consent import links
from consent.keys import Keys
from consent.model import ConsentRecord, check_name
from domain.credentials import CONSENT_READ, MESSAGES_READ, PROFILES_READ, SEGMENTS_READ
from domain.personal_data import Subject

if TYPE_CHECKING:
    from api.graphql.types.journey import JourneyEnrollmentNode
    from api.graphql.types.segment import SegmentMembershipChange, SegmentNode

Segment = Annotated["SegmentNode", strawberry.lazy("api.graphql.types.segment")]
JourneyEnrollment = Annotated["JourneyEnrollmentNode", strawberry.lazy("api.graphql.types.journey")]
SegmentChange = Annotated["SegmentMembershipChange", strawberry.lazy("api.graphql.types.segment")]


@strawberry.type
class TraitSource:
    key: str
    source: str
    at: datetime


@strawberry.type
class RfmScores:
    recency: int
    frequency: int
    monetary: int


@strawberry.type
class ComputedTraits:
    first_seen: datetime | None
    last_seen: datetime | None
    last_product_viewed: JSON | None
    cart: JSON | None = strawberry.field(description="Items currently in the cart.")
    order_count: int
    total_revenue: float
    average_order_value: float | None
    last_order_at: datetime | None
    rfm: RfmScores | None


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def computed_traits(computed: dict[str, Any], now: datetime) -> ComputedTraits:
    viewed = computed.get("last_product_viewed")
    cart = computed.get("cart")
    scores = rfm(computed, now)
    return ComputedTraits(
        first_seen=_dt(computed.get("first_seen")),
        last_seen=_dt(computed.get("last_seen")),
        last_product_viewed=viewed.get("product") if isinstance(viewed, dict) else None,
        cart=cart.get("items") if isinstance(cart, dict) else None,
        order_count=int(computed.get("order_count", 0)),
        total_revenue=float(computed.get("total_revenue", 0.0)),
        average_order_value=computed.get("average_order_value"),
        last_order_at=_dt(computed.get("last_order_at")),
        rfm=RfmScores(**scores) if scores else None,
    )


@strawberry.type
class ProfileMerge:
    source_profile_id: relay.GlobalID
    target_profile_id: relay.GlobalID
    rule: str
    trigger: str
    merged_at: datetime


@strawberry.type(name="Profile")
class ProfileNode(relay.Node):
    id: relay.NodeID[str]
    traits: JSON
    created_at: datetime
    updated_at: datetime
    row: strawberry.Private[queries.ProfileRow]

    @classmethod
    def from_row(cls, row: queries.ProfileRow) -> "ProfileNode":
        return cls(
            id=str(row.id),
            traits=JSON(row.traits),
            created_at=row.created_at,
            updated_at=row.updated_at,
            row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["ProfileNode | None"]:
        return await load_nodes(
            info,
            loader_name="profile",
            node_ids=node_ids,
            scope=PROFILES_READ,
            fetch=queries.profiles_by_id,
            to_node=cls.from_row,
        )

    async def _identities(self, info: Info) -> list[Identifier]:
        uow = await info.context.uow()
        return list(await loaders.identities(info, uow).load(self.row.id))

    @strawberry.field
    async def identities(self, info: Info) -> list[Identity]:
        return [Identity(kind=i.kind, value=i.value) for i in await self._identities(info)]

    @strawberry.field
    async def events(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        name: str | None = None,
    ) -> relay.Connection[EventNode]:
        page = event_page(first, after, name)
        rows = await loaders.events(info, page).load(self.row.id)
        return connection.build(
            rows, page.limit - 1, to_node=EventNode.from_row, after=page.before,
            cursor=encode_event_cursor,
        )  # fmt: skip

    @strawberry.field(description="Where and when each trait's current value came from.")
    def trait_sources(self) -> list[TraitSource]:
        return [
            TraitSource(
                key=key, source=str(meta.get("source")), at=datetime.fromisoformat(meta["at"])
            )
            for key, meta in sorted(self.row.trait_meta.items())
            if isinstance(meta, dict) and "at" in meta
        ]

    @strawberry.field
    def computed_traits(self, info: Info) -> ComputedTraits:
        return computed_traits(self.row.computed, info.context.state.clock.now())

    @strawberry.field(description="The accounts this person belongs to (Segment `group` calls).")
    async def groups(self, info: Info) -> list[ProfileGroup]:
        uow = await info.context.uow()
        rows = await loaders.groups(info, uow).load(self.row.id)
        return [ProfileGroup.from_row(r) for r in rows]

    @strawberry.field(description="Profiles merged into this one, oldest first.")
    async def merge_history(self, info: Info) -> list[ProfileMerge]:
        uow = await info.context.uow()
        rows = await loaders.merges(info, uow).load(self.row.id)
        return [
            ProfileMerge(
                source_profile_id=relay.GlobalID("Profile", str(r.source_profile_id)),
                target_profile_id=relay.GlobalID("Profile", str(r.target_profile_id)),
                rule=r.rule,
                trigger=r.trigger,
                merged_at=r.created_at,
            )
            for r in rows
        ]

    @strawberry.field(
        description="Identifier collisions that kept this profile apart from another."
    )
    async def identity_conflicts(self, info: Info) -> list[IdentityConflictNode]:
        uow = await info.context.uow()
        rows = await loaders.conflicts(info, uow).load(self.row.id)
        return [IdentityConflictNode.from_row(r) for r in rows]

    @strawberry.field(description="The segments this profile is a member of now.")
    async def segments(self, info: Info) -> list[Segment]:
        from api.graphql.types.segment import SegmentNode  # noqa: PLC0415 - the types refer to each other

        uow = await info.context.require(SEGMENTS_READ)
        ids = await loaders.profile_segments(info, uow).load(self.row.id)
        nodes = await SegmentNode.resolve_nodes(info=info, node_ids=[str(i) for i in ids])
        return [n for n in nodes if n is not None]

    @strawberry.field(description="This profile's journey enrollments, the latest 100 first.")
    async def journeys(self, info: Info) -> list[JourneyEnrollment]:
        from api.graphql.types.journey import JourneyEnrollmentNode  # noqa: PLC0415 - the types refer to each other

        uow = await info.context.require(MESSAGES_READ)
        rows = await loaders.profile_journeys(info, uow).load(self.row.id)
        return [JourneyEnrollmentNode.from_row(r) for r in rows]

    @strawberry.field(description="This profile's latest segment entries and exits, newest first.")
    async def segment_history(self, info: Info, first: int | None = None) -> list[SegmentChange]:
        from api.graphql.types.segment import SegmentMembershipChange, SegmentNode  # noqa: PLC0415 - the types refer to each other

        uow = await info.context.require(SEGMENTS_READ)
        rows = await loaders.segment_history(info, uow, connection.page_size(first)).load(
            self.row.id
        )
        nodes = await SegmentNode.resolve_nodes(
            info=info, node_ids=[str(r.segment_id) for r in rows]
        )
        return [
            SegmentMembershipChange(segment=node, entered=r.entered, at=r.at)
            for r, node in zip(rows, nodes, strict=True)
            if node is not None
        ]

    async def _subject(self, info: Info, *, with_identifiers: bool) -> Subject:
        uow = await info.context.uow()
        ids = await loaders.merged_ids(info, uow).load(self.row.id)
        if not with_identifiers:
            return Subject(uow.workspace_id, tuple(ids))
        held = tuple((i.kind, i.value) for i in await self._identities(info))
        keys: Keys = info.context.state.keys
        return keys.hashed(Subject(uow.workspace_id, tuple(ids), held))

    @strawberry.field(
        description=(
            "The current consent state, one per purpose and channel, across every profile "
            "merged into this one (the latest record wins)."
        )
    )
    async def consents(self, info: Info) -> list[Consent]:
        records = await self._consent_records(info, at=None)
        return [Consent.from_record(r) for r in records]

    async def _consent_records(self, info: Info, *, at: datetime | None) -> list[ConsentRecord]:
        """The subject's current consent records as of `at`, loaded with its siblings'."""
        uow = await info.context.require(CONSENT_READ)
        subject = await self._subject(info, with_identifiers=False)
        return await loaders.consents(info, uow).load((subject.profile_ids, at))

    @strawberry.field(description="The consent for a purpose and channel as it stood at `at`.")
    async def consent_at(
        self, info: Info, purpose: str, channel: str, at: datetime
    ) -> Consent | None:
        wanted = (check_name(purpose, "purpose"), check_name(channel, "channel"))
        records = await self._consent_records(info, at=at)
        found = next((r for r in records if (r.purpose, r.channel) == wanted), None)
        return Consent.from_record(found) if found else None

    @strawberry.field(description="The one contact gate: may this profile be contacted, and why.")
    async def contactable(self, info: Info, channel: str, purpose: str) -> Contactability:
        uow = await info.context.require(CONSENT_READ)
        # Checked here, so that a bad name fails this field and not its siblings' batch.
        channel, purpose = check_name(channel, "channel"), check_name(purpose, "purpose")
        subject = await self._subject(info, with_identifiers=True)
        answer = await loaders.contactability(info, uow).load((subject, channel, purpose))
        return Contactability.from_domain(answer)

    @strawberry.field(
        description=(
            "The signed RFC 8058 one-click unsubscribe URL for a purpose on a channel "
            "(List-Unsubscribe); it does not expire."
        )
    )
    async def unsubscribe_url(self, info: Info, channel: str, purpose: str) -> str:
        uow = await info.context.require(CONSENT_READ)
        token = links.unsubscribe_token(
            info.context.state.keys, uow.workspace_id, self.row.id, channel=channel, purpose=purpose
        )
        return str(info.context.state.link(f"/unsubscribe/{token}"))

    @strawberry.field(description="The signed link to this person's preference centre.")
    async def preference_centre_url(self, info: Info) -> str:
        uow = await info.context.require(CONSENT_READ)
        token = links.preferences_token(info.context.state.keys, uow.workspace_id, self.row.id)
        return str(info.context.state.link(f"/preferences/{token}"))


@strawberry.input
class ProfileUpsertInput:
    identifiers: list[IdentifierInput]
    traits: JSON | None = None


def _upsert_item(
    cls: type, value: Mapping[str, Any], context: InputContext
) -> profile_service.UpsertItem:
    # The contract's input type, built straight into the service's item.
    # graphql-core has already coerced and checked the value against the schema
    # (kind and value are non-null strings; JSON passes through as it is), so
    # nothing is left to convert. Strawberry's generic conversion would walk
    # every field of every item by reflection, which cost more than the rest of
    # a 1,000-item call together.
    return profile_service.UpsertItem(
        identifiers=[(i["kind"], i["value"]) for i in value["identifiers"]],
        traits=value.get("traits"),
    )


get_object_definition(ProfileUpsertInput, strict=True).from_input = _upsert_item
