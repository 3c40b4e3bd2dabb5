"""Campaigns in GraphQL: the campaign, its variants, deliveries and stats, and the input."""

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql import connection, loaders
from api.graphql.ids import local_id
from api.graphql.nodes import load_nodes
from delivery.sending import campaigns
from delivery.sending.campaigns import Campaign
from delivery.tracking import stats as tracking_stats
from delivery.tracking.stats import Counts
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


@strawberry.type(
    description="What became of messages: from the hourly counters, so any size "
    "reads at the same speed. Rates are fractions (0.25 is 25%)."
)
class MessageStats:
    recipients: int
    skipped: int = strawberry.field(description="Not sent: no consent, no address, holdout...")
    sent: int = strawberry.field(description="Accepted by the relay.")
    delivered: int = strawberry.field(description="Sent and not bounced.")
    bounced: int
    complained: int
    failed: int
    opened: int = strawberry.field(description="Messages opened by a person at least once (a "
                                               "click counts as an open).")  # fmt: skip
    opens: int = strawberry.field(description="Every human open, repeats included.")
    machine_opens: int = strawberry.field(
        description="Opens by mail privacy proxies and prefetchers, left out of opened."
    )
    clicked: int = strawberry.field(description="Messages with a person's click at least once.")
    clicks: int = strawberry.field(description="Every human click, repeats included.")
    machine_clicks: int = strawberry.field(
        description="Clicks by link scanners and bots, left out of clicked."
    )
    converted: int = strawberry.field(description="Messages credited with at least one order.")
    orders: int = strawberry.field(description="Orders credited to these messages.")
    revenue: float
    unsubscribed: int
    delivery_rate: float = strawberry.field(description="delivered / (delivered + bounced)")
    bounce_rate: float = strawberry.field(description="bounced / (delivered + bounced)")
    open_rate: float = strawberry.field(description="opened / delivered")
    click_rate: float = strawberry.field(description="clicked / delivered")
    click_to_open_rate: float = strawberry.field(description="clicked / opened")
    conversion_rate: float = strawberry.field(description="converted / delivered")
    unsubscribe_rate: float = strawberry.field(description="unsubscribed / delivered")
    complaint_rate: float = strawberry.field(description="complained / delivered")
    revenue_per_email: float = strawberry.field(description="revenue / delivered")

    @classmethod
    def of(cls, c: Counts) -> "MessageStats":
        return cls(
            recipients=c.recipients, skipped=c.skipped, sent=c.sent, delivered=c.delivered,
            bounced=c.bounced, complained=c.complained, failed=c.failed, opened=c.opened,
            opens=c.opens, machine_opens=c.machine_opens, clicked=c.clicked, clicks=c.clicks,
            machine_clicks=c.machine_clicks, converted=c.converted, orders=c.orders,
            revenue=float(c.revenue), unsubscribed=c.unsubscribed,
            delivery_rate=c.delivery_rate, bounce_rate=c.bounce_rate, open_rate=c.open_rate,
            click_rate=c.click_rate, click_to_open_rate=c.click_to_open_rate,
            conversion_rate=c.conversion_rate, unsubscribe_rate=c.unsubscribe_rate,
            complaint_rate=c.complaint_rate, revenue_per_email=c.revenue_per_email,
        )  # fmt: skip


@strawberry.type(description="A time-series point: the messages' counts in [start, end).")
class MessageStatsPoint:
    start: datetime
    end: datetime
    stats: MessageStats


@strawberry.type(
    description="Whether the leading variant's rate is a real win: a two-sided "
    "two-proportion z-test of the leader against the runner-up."
)
class VariantTest:
    metric: str = strawberry.field(description="open, click or conversion (over delivered).")
    leader: str | None
    runner_up: str | None
    p_value: float | None
    significant: bool = strawberry.field(description="p < 0.05")
    lift: float | None = strawberry.field(description="leader's rate / runner-up's rate - 1")


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

    @strawberry.field(description="The whole campaign's messages, holdout included.")
    async def stats(self, info: Info) -> MessageStats:
        uow = await info.context.require(MESSAGES_READ)
        by_variant = await loaders.campaign_stats(info, uow).load(self.row.id)
        return MessageStats.of(Counts.total(list(by_variant.values())))

    @strawberry.field
    async def variants(self, info: Info) -> list[CampaignVariant]:
        uow = await info.context.require(MESSAGES_READ)
        by_variant = await loaders.campaign_stats(info, uow).load(self.row.id)
        return [
            CampaignVariant(name=v["name"], subject=v["subject"], weight=v["weight"],
                            stats=MessageStats.of(by_variant.get(v["name"], Counts())))
            for v in self.row.variants
        ]  # fmt: skip

    @strawberry.field(description="Whether the leading variant wins on `metric` (open, click or "
                                  "conversion) by more than chance; null without variants.")  # fmt: skip
    async def variant_test(self, info: Info, metric: str = "click") -> VariantTest | None:
        uow = await info.context.require(MESSAGES_READ)
        if len(self.row.variants) < 2:  # noqa: PLR2004 - a test needs two arms
            return None
        by_variant = await loaders.campaign_stats(info, uow).load(self.row.id)
        found = tracking_stats.test_variants(by_variant, [v["name"] for v in self.row.variants],
                                             metric)  # fmt: skip
        return VariantTest(metric=found.metric, leader=found.leader, runner_up=found.runner_up,
                           p_value=found.p_value, significant=found.significant,
                           lift=found.lift)  # fmt: skip

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
    track_opens: bool = strawberry.field(
        description="Whether messages carry an open pixel (GET /t/o/...)."
    )
    track_clicks: bool = strawberry.field(
        description="Whether links in messages go through a click redirect (GET /t/c/...)."
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
    track_opens: bool | None = None
    track_clicks: bool | None = None
