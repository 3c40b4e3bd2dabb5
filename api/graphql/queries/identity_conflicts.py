"""The `identityConflicts` field: collisions the merge rules refused, for a person to review."""

from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.types.identity import IdentityConflictNode
from cdp import queries
from domain.credentials import PROFILES_READ


async def identity_conflicts(
    info: Info, first: int | None = None, after: str | None = None
) -> relay.Connection[IdentityConflictNode]:
    """Identifier collisions the merge rules refused, for a person to review."""
    uow = await info.context.require(PROFILES_READ)
    limit = connection.page_size(first)
    cursor = connection.decode_cursor(after)
    rows = await queries.list_conflicts(uow, after=cursor, limit=limit + 1)
    return connection.build(
        rows, limit, key=lambda r: r.id, to_node=IdentityConflictNode.from_row, after=cursor
    )
