"""The `segment`, `segments`, `previewSegment` and `segmentDefinitionSchema` fields."""

from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.ids import local_id
from api.graphql.scalars import JSON
from api.graphql.types.profile import ProfileNode
from api.graphql.types.segment import SegmentNode, SegmentPreview
from cdp.segments import definition, services
from cdp.segments import repository as segment_store
from domain.credentials import SEGMENTS_READ
from domain.errors import NotFoundError


async def segment(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - the contract's name
) -> SegmentNode | None:
    await info.context.require(SEGMENTS_READ)
    try:
        key = local_id(id, "Segment")
    except NotFoundError:
        return None
    [node] = await SegmentNode.resolve_nodes(info=info, node_ids=[str(key)])
    return node


async def segments(
    info: Info, first: int | None = None, after: str | None = None
) -> relay.Connection[SegmentNode]:
    """The workspace's segments, oldest first."""
    uow = await info.context.require(SEGMENTS_READ)
    limit = connection.page_size(first)
    cursor = connection.decode_cursor(after)
    rows = await segment_store.page(uow, after=cursor, limit=limit + 1)
    return connection.build(
        rows, limit, key=lambda r: r.id, to_node=SegmentNode.from_row, after=cursor
    )


async def preview_segment(
    info: Info, definition: JSON, sample: int | None = None
) -> SegmentPreview:
    """The size of an unsaved definition now, and up to `sample` (default 10) of its members; writes nothing."""
    uow = await info.context.require(SEGMENTS_READ)
    size, ids = await services.preview(
        uow, info.context.state.keys, definition, sample=10 if sample is None else sample
    )
    nodes = await ProfileNode.resolve_nodes(info=info, node_ids=[str(i) for i in ids])
    return SegmentPreview(size=size, sample=[n for n in nodes if n is not None])


async def segment_definition_schema(info: Info) -> JSON:
    """The JSON Schema of a segment definition, for building a rule editor."""
    await info.context.require(SEGMENTS_READ)
    return JSON(definition.SCHEMA)
