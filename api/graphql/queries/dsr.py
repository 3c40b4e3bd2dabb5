"""The `dataSubjectRequest` and `dataSubjectRequests` fields, for compliance staff."""

from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.ids import local_id
from api.graphql.types.dsr import DataSubjectRequestNode, DataSubjectRequestStatus
from consent.dsr import services as dsr
from domain.credentials import DSR_MANAGE
from domain.errors import NotFoundError


async def data_subject_request(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
) -> DataSubjectRequestNode | None:
    await info.context.require(DSR_MANAGE)
    try:
        key = local_id(id, "DataSubjectRequest")
    except NotFoundError:
        return None
    nodes = await DataSubjectRequestNode.resolve_nodes(info=info, node_ids=[str(key)])
    return nodes[0]


async def data_subject_requests(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    status: DataSubjectRequestStatus | None = None,
) -> relay.Connection[DataSubjectRequestNode]:
    """Requests oldest first, so the nearest deadlines come first."""
    uow = await info.context.require(DSR_MANAGE)
    limit = connection.page_size(first)
    cursor = connection.decode_cursor(after)
    rows = await dsr.list_requests(
        uow,
        limit=limit + 1,
        after=cursor,
        status=status,
    )
    return connection.build(
        rows, limit, key=lambda r: r.id, to_node=DataSubjectRequestNode.from_domain, after=cursor
    )
