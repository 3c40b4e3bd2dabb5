"""Profiles, identities, events, merges and conflicts in GraphQL."""

import base64
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import strawberry
from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from api.graphql import connection
from api.graphql.grouped import load_by_group
from api.graphql.nodes import load_nodes
from api.graphql.scalars import JSON
from api.graphql.types.consent import Consent, Contactability
from api.graphql.types.group import ProfileGroup
from cdp import queries
from cdp.traits import rfm
from consent import gate, ledger, links
from consent.keys import Keys
from consent.model import check_name
from domain.credentials import CONSENT_READ, PROFILES_READ
from domain.errors import ValidationError
from domain.ids import parse_uuid
from domain.personal_data import Subject


@strawberry.type
class Identity:
    kind: str
    value: str


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


@strawberry.type(name="Event")
class EventNode(relay.Node):
    id: relay.NodeID[str]
    type: str
    name: str | None
    timestamp: datetime
    received_at: datetime
    message_id: str
    properties: JSON
    context: JSON

    @classmethod
    def from_row(cls, row: queries.EventRow) -> "EventNode":
        return cls(
            id=str(row.id),
            type=row.type,
            name=row.name,
            timestamp=row.timestamp,
            received_at=row.received_at,
            message_id=row.message_id,
            properties=JSON(row.properties),
            context=JSON(row.context),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["EventNode | None"]:
        return await load_nodes(
            info,
            loader_name="event",
            node_ids=node_ids,
            scope=PROFILES_READ,
            fetch=queries.events_by_id,
            to_node=cls.from_row,
        )


@strawberry.type
class ProfileMerge:
    source_profile_id: relay.GlobalID
    target_profile_id: relay.GlobalID
    rule: str
    trigger: str
    merged_at: datetime


@strawberry.type(name="IdentityConflict")
class IdentityConflictNode(relay.Node):
    id: relay.NodeID[str]
    kind: str
    value: str
    held_by: relay.GlobalID = strawberry.field(description="The profile that keeps the identifier.")
    claimed_by: relay.GlobalID = strawberry.field(description="The profile that was refused it.")
    rule: str
    trigger: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: queries.ConflictRow) -> "IdentityConflictNode":
        return cls(
            id=str(row.id),
            kind=row.kind,
            value=row.value,
            held_by=relay.GlobalID("Profile", str(row.held_by)),
            claimed_by=relay.GlobalID("Profile", str(row.claimed_by)),
            rule=row.rule,
            trigger=row.trigger,
            created_at=row.created_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["IdentityConflictNode | None"]:
        uow = await info.context.require(PROFILES_READ)
        keys = [parse_uuid(i) for i in node_ids]
        rows = await queries.list_conflicts_by_id(uow, [k for k in keys if k])
        return [cls.from_row(rows[k]) if k in rows else None for k in keys]


def encode_event_cursor(row: queries.EventRow) -> str:
    return base64.urlsafe_b64encode(f"event:{row.timestamp.isoformat()}|{row.id}".encode()).decode()


def decode_event_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, _, rest = raw.partition(":")
        stamp, _, key = rest.partition("|")
        parsed = (datetime.fromisoformat(stamp).astimezone(UTC), UUID(key))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("malformed cursor", field="after") from exc
    if prefix != "event":
        raise ValidationError("malformed cursor", field="after")
    return parsed


def event_page(first: int | None, after: str | None, name: str | None) -> queries.EventPage:
    """The page that `events(first:, after:, name:)` reads: one event more than it shows,
    to tell whether there is a next page."""
    return queries.EventPage(connection.page_size(first) + 1, name, decode_event_cursor(after))


def events_loader(info: Info, page: queries.EventPage) -> DataLoader[UUID, list[queries.EventRow]]:
    """The request's loader of `page` for each profile (a profile lookup may prime it)."""

    async def load(keys: Sequence[UUID]) -> list[list[queries.EventRow]]:
        found = await queries.recent_events(await info.context.uow(), keys, page)
        return [found.get(k, []) for k in keys]

    loader: DataLoader[UUID, list[queries.EventRow]] = info.context.loader(f"events:{page!r}", load)
    return loader


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

    async def _identities(self, info: Info) -> list[Any]:
        uow = await info.context.uow()

        async def load(keys: Sequence[UUID]) -> list[list[Any]]:
            found = await queries.identities_of(uow, keys)
            return [found.get(k, []) for k in keys]

        return list(await info.context.loader("identities", load).load(self.row.id))

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
        rows: list[queries.EventRow] = await events_loader(info, page).load(self.row.id)
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

        async def load(keys: Sequence[UUID]) -> list[list[queries.GroupRow]]:
            found = await queries.groups_of(uow, keys)
            return [found.get(k, []) for k in keys]

        rows = await info.context.loader("groups", load).load(self.row.id)
        return [ProfileGroup.from_row(r) for r in rows]

    @strawberry.field(description="Profiles merged into this one, oldest first.")
    async def merge_history(self, info: Info) -> list[ProfileMerge]:
        uow = await info.context.uow()

        async def load(keys: Sequence[UUID]) -> list[list[queries.MergeRow]]:
            found = await queries.merges_of(uow, keys)
            return [found.get(k, []) for k in keys]

        rows = await info.context.loader("merges", load).load(self.row.id)
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

        async def load(keys: Sequence[UUID]) -> list[list[queries.ConflictRow]]:
            found = await queries.conflicts_of(uow, keys)
            return [found.get(k, []) for k in keys]

        rows = await info.context.loader("conflicts", load).load(self.row.id)
        return [IdentityConflictNode.from_row(r) for r in rows]

    async def _subject(self, info: Info, *, with_identifiers: bool) -> Subject:
        uow = await info.context.uow()

        async def load_ids(keys: Sequence[UUID]) -> list[list[UUID]]:
            found = await queries.merged_ids(uow, keys)
            return [found.get(k, [k]) for k in keys]

        ids = await info.context.loader("merged_ids", load_ids).load(self.row.id)
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

    async def _consent_records(self, info: Info, *, at: datetime | None) -> list[Any]:
        """The subject's current consent records as of `at`, loaded with its siblings'."""
        uow = await info.context.require(CONSENT_READ)
        subject = await self._subject(info, with_identifiers=False)

        async def load(keys: Sequence[tuple[tuple[UUID, ...], datetime | None]]) -> list[Any]:
            return await load_by_group(
                keys,
                lambda key: key[1],
                lambda when, group: ledger.current_for_many(uow, [k[0] for k in group], at=when),
            )

        records: list[Any] = await info.context.loader("consents", load).load(
            (subject.profile_ids, at)
        )
        return records

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

        async def load(keys: Sequence[tuple[Subject, str, str]]) -> list[Any]:
            return await load_by_group(
                keys,
                lambda key: (key[1], key[2]),
                lambda wanted, group: gate.contactability(
                    uow, [k[0] for k in group], channel=wanted[0], purpose=wanted[1]
                ),
            )

        answer = await info.context.loader("contactable", load).load((subject, channel, purpose))
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
