"""The Relay `node` field: any object by its global id."""

from collections.abc import Awaitable, Iterable
from typing import Annotated, cast

import strawberry
from strawberry import relay
from strawberry.relay.types import GlobalIDValueError
from strawberry.types import Info


async def node(
    info: Info,
    id: Annotated[relay.GlobalID, strawberry.argument(description="The ID of the object.")],  # noqa: A002 - Relay's name
) -> relay.Node | None:
    try:
        node_type = id.resolve_type(info)
    except GlobalIDValueError:
        return None
    found = await cast(
        "Awaitable[Iterable[relay.Node | None]]",
        node_type.resolve_nodes(info=info, node_ids=[id.node_id], required=False),
    )
    return next(iter(found), None)
