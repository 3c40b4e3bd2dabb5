"""Campaigns in GraphQL: the campaign, its variants, deliveries and stats, and the input."""

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.ids import local_id
from api.graphql.nodes import load_nodes
from delivery.sending import campaigns
from delivery.sending.campaigns import Campaign
from domain.credentials import MESSAGES_READ

if TYPE_CHECKING:
    from api.graphql.types.profile import ProfileNode
    from api.graphql.types.segment import SegmentNode
    from api.graphql.types.template import TemplateNode

Profile = Annotated["ProfileNode", strawberry.lazy("api.graphql.types.profile")]
Segment = Annotated["SegmentNode", strawberry.lazy("api.graphql.types.segment")]
Template = Annotated["TemplateNode", strawberry.lazy("api.graphql.types.template")]


@strawberry.enum
class CampaignStatus(Enum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    SENDING = "SENDING"
    PAUSED = "PAUSED"
    SENT = "SENT"
    CANCELLED = "CANCELLED"


@strawberry.enum
class DeliveryStatus(Enum):
    QUEUED = "QUEUED"
    SKIPPED = "SKIPPED"
    SENT = "SENT"
    DEFERRED = "DEFERRED"
    BOUNCED = "BOUNCED"
    FAILED = "FAILED"
    COMPLAINED = "COMPLAINED"


@strawberry.type
class MessageStats:
    recipients: int
    skipped: int
    sent: int
    delivered: int
    bounced: int
    complained: int
    opened: int
    clicked: int
    converted: int
    revenue: float
    unsubscribed: int

    @classmethod
    def of(cls, counts: dict[str, int]) -> "MessageStats":
        sent = counts.get("SENT", 0) + counts.get("BOUNCED", 0) + counts.get("COMPLAINED", 0)
        # Opens, clicks and conversions come with tracking; delivered is sent and not bounced.
        return cls(
            recipients=sum(counts.values()), skipped=counts.get("SKIPPED", 0), sent=sent,
            delivered=sent - counts.get("BOUNCED", 0), bounced=counts.get("BOUNCED", 0),
            complained=counts.get("COMPLAINED", 0), opened=0, clicked=0, converted=0,
            revenue=0.0, unsubscribed=0,
        )  # fmt: skip


@strawberry.type
class CampaignVariant:
    name: str
    subject: str
    weight: float
    stats: MessageStats


@strawberry.type(name="Delivery")
class DeliveryNode(relay.Node):
    id: relay.NodeID[str]
    status: DeliveryStatus
    reason: str | None = strawberry.field(description="Why it was skipped, bounced or failed.")
    variant: str | None
    message_id: str | None
    sent_at: datetime | None
    profile_id: strawberry.Private[str]

    @strawberry.field
    async def profile(self, info: Info) -> Profile | None:
        from api.graphql.types.profile import ProfileNode  # noqa: PLC0415 - the types refer to each other

        [node] = await ProfileNode.resolve_nodes(info=info, node_ids=[self.profile_id])
        return node

    @classmethod
    def from_row(cls, row: campaigns.DeliveryRow) -> "DeliveryNode":
        return cls(
            id=str(row.id), status=DeliveryStatus(row.status), reason=row.reason,
            variant=row.variant, message_id=row.message_id, sent_at=row.sent_at,
            profile_id=str(row.profile_id),
        )  # fmt: skip

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["DeliveryNode | None"]:
        return await load_nodes(
            info,
            loader_name="delivery",
            node_ids=node_ids,
            scope=MESSAGES_READ,
            fetch=campaigns.deliveries_by_id,
            to_node=cls.from_row,
        )


@strawberry.type(name="Campaign")
class CampaignNode(relay.Node):
    id: relay.NodeID[str]
    name: str
    status: CampaignStatus
    purpose: str
    from_email: str
    from_name: str | None
    reply_to: str | None
    holdout_percent: float
    local_time: bool
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    paused_reason: str | None = strawberry.field(
        description="Why the reputation guard paused the campaign; null when a person did."
    )
    row: strawberry.Private[Campaign]

    @classmethod
    def from_row(cls, row: Campaign) -> "CampaignNode":
        return cls(
            id=str(row.id), name=row.name, status=CampaignStatus(row.status),
            purpose=row.purpose, from_email=row.from_email, from_name=row.from_name,
            reply_to=row.reply_to, holdout_percent=row.holdout_percent,
            local_time=row.local_time, scheduled_at=row.scheduled_at,
            started_at=row.started_at, finished_at=row.finished_at,
            paused_reason=row.paused_reason, row=row,
        )  # fmt: skip

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["CampaignNode | None"]:
        return await load_nodes(
            info,
            loader_name="campaign",
            node_ids=node_ids,
            scope=MESSAGES_READ,
            fetch=campaigns.get_many,
            to_node=cls.from_row,
        )

    @strawberry.field
    async def segment(self, info: Info) -> Segment | None:
        from api.graphql.types.segment import SegmentNode  # noqa: PLC0415 - the types refer to each other

        [node] = await SegmentNode.resolve_nodes(info=info, node_ids=[str(self.row.segment_id)])
        return node

    @strawberry.field
    async def template(self, info: Info) -> Template | None:
        from api.graphql.types.template import TemplateNode  # noqa: PLC0415 - the types refer to each other

        [node] = await TemplateNode.resolve_nodes(info=info, node_ids=[str(self.row.template_id)])
        return node

    @strawberry.field(description="Deliveries by status, for the whole campaign.")
    async def stats(self, info: Info) -> MessageStats:
        uow = await info.context.require(MESSAGES_READ)
        counts = (await campaigns.counts(uow, [self.row.id]))[self.row.id]
        return MessageStats.of(counts)

    @strawberry.field
    async def variants(self, info: Info) -> list[CampaignVariant]:
        uow = await info.context.require(MESSAGES_READ)
        by_variant = await campaigns.counts_by_variant(uow, self.row.id)
        return [
            CampaignVariant(name=v["name"], subject=v["subject"], weight=v["weight"],
                            stats=MessageStats.of(by_variant.get(v["name"], {})))
            for v in self.row.variants
        ]  # fmt: skip

    @strawberry.field(description="The recipients and what became of each, in a stable order.")
    async def deliveries(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> relay.Connection[DeliveryNode]:
        uow = await info.context.require(MESSAGES_READ)
        limit = connection.page_size(first)
        cursor = connection.decode_cursor(after)
        rows = await campaigns.delivery_page(
            uow, self.row.id, after=cursor, limit=limit + 1,
            status=None if status is None else status.value,
        )  # fmt: skip
        return connection.build(
            rows, limit, key=lambda r: r.id, after=cursor, to_node=DeliveryNode.from_row
        )


@strawberry.input
class CampaignVariantInput:
    name: str
    subject: str
    weight: float


@strawberry.input
class CampaignInput:
    name: str
    segment_id: relay.GlobalID
    template_id: relay.GlobalID
    purpose: str
    from_email: str
    from_name: str | None = None
    reply_to: str | None = None
    variants: list[CampaignVariantInput] | None = None
    holdout_percent: float | None = None
    local_time: bool | None = None

    def to_service(self) -> campaigns.CampaignInput:
        return campaigns.CampaignInput(
            name=self.name,
            segment_id=local_id(self.segment_id, "Segment", "segmentId"),
            template_id=local_id(self.template_id, "Template", "templateId"),
            purpose=self.purpose, from_email=self.from_email, from_name=self.from_name,
            reply_to=self.reply_to,
            variants=[campaigns.Variant(v.name, v.subject, v.weight) for v in self.variants or []],
            holdout_percent=self.holdout_percent or 0.0, local_time=bool(self.local_time),
        )  # fmt: skip


@strawberry.type
class SendPolicy:
    frequency_cap: int | None
    frequency_hours: int | None
    quiet_hours_start: str | None
    quiet_hours_end: str | None
    default_timezone: str
    sending_domain_rate: float = strawberry.field(
        description="Messages a second at most from each sending domain (all its campaigns)."
    )
    recipient_domain_rate: float = strawberry.field(
        description="Messages a second at most to each recipient domain (gmail.com, ...)."
    )


@strawberry.input
class SendPolicyInput:
    frequency_cap: int | None = None
    frequency_hours: int | None = None
    quiet_hours_start: str | None = None
    quiet_hours_end: str | None = None
    default_timezone: str | None = None
    sending_domain_rate: float | None = None
    recipient_domain_rate: float | None = None
