"""The `template` and `templates` fields."""

from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.ids import local_id
from api.graphql.types.template import TemplateNode
from delivery.templates import repository as template_store
from domain.credentials import MESSAGES_READ
from domain.errors import NotFoundError


async def template(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - the contract's name
) -> TemplateNode | None:
    await info.context.require(MESSAGES_READ)
    try:
        key = local_id(id, "Template")
    except NotFoundError:
        return None
    [node] = await TemplateNode.resolve_nodes(info=info, node_ids=[str(key)])
    return node


async def templates(
    info: Info, first: int | None = None, after: str | None = None
) -> relay.Connection[TemplateNode]:
    """The workspace's templates, oldest first."""
    uow = await info.context.require(MESSAGES_READ)
    limit = connection.page_size(first)
    cursor = connection.decode_cursor(after)
    rows = await template_store.page(uow, after=cursor, limit=limit + 1)
    return connection.build(
        rows, limit, key=lambda r: r.id, to_node=TemplateNode.from_row, after=cursor
    )
