"""The `campaign` and `campaigns` fields."""

from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.ids import local_id
from api.graphql.types.campaign import CampaignNode
from delivery.sending import campaigns as campaign_store
from domain.credentials import MESSAGES_READ
from domain.errors import NotFoundError


async def campaign(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - the contract's name
) -> CampaignNode | None:
    await info.context.require(MESSAGES_READ)
    try:
        key = local_id(id, "Campaign")
    except NotFoundError:
        return None
    [node] = await CampaignNode.resolve_nodes(info=info, node_ids=[str(key)])
    return node


async def campaigns(
    info: Info, first: int | None = None, after: str | None = None
) -> relay.Connection[CampaignNode]:
    """The workspace's campaigns, oldest first."""
    uow = await info.context.require(MESSAGES_READ)
    limit = connection.page_size(first)
    cursor = connection.decode_cursor(after)
    rows = await campaign_store.page(uow, after=cursor, limit=limit + 1)
    return connection.build(
        rows, limit, key=lambda r: r.id, to_node=CampaignNode.from_row, after=cursor
    )
