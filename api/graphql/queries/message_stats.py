"""The `messageStats` time series, for charts."""

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql.ids import local_id
from api.graphql.types.campaign import MessageStats, MessageStatsPoint
from delivery.tracking import stats
from domain.credentials import MESSAGES_READ
from domain.errors import ValidationError


async def message_stats(  # noqa: PLR0917 - GraphQL maps each argument to a parameter
    info: Info,
    from_: Annotated[datetime, strawberry.argument(name="from")],
    to: datetime,
    interval: str,
    campaign_id: relay.GlobalID | None = None,
    journey_id: relay.GlobalID | None = None,
) -> list[MessageStatsPoint]:
    """Messages' counts and rates per `interval` (hour, day, week or month, in UTC; weeks start
    on Monday) from the interval holding `from` up to `to`, empty intervals included: of one
    campaign, one journey's messages, or the whole workspace. The points add up to the totals."""
    uow = await info.context.require(MESSAGES_READ)
    if campaign_id is not None and journey_id is not None:
        raise ValidationError("give campaignId or journeyId, not both", field="campaignId")
    campaigns = None
    if campaign_id is not None:
        campaigns = [local_id(campaign_id, "Campaign", "campaignId")]
    elif journey_id is not None:
        journey = local_id(journey_id, "Journey", "journeyId")
        campaigns = await stats.journey_campaigns(uow, journey)
    points = await stats.series(uow, from_, to, interval, campaigns)
    return [MessageStatsPoint(start=start, end=end, stats=MessageStats.of(counts))
            for start, end, counts in points]  # fmt: skip
