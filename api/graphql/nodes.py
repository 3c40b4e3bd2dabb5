"""Resolving Relay nodes by id through the request's loader of their type."""

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeVar
from uuid import UUID

from strawberry.types import Info

from api.graphql import loaders
from domain.ids import parse_uuid
from domain.uow import UnitOfWork

D = TypeVar("D")
N = TypeVar("N")


async def load_nodes(
    info: Info,
    *,
    loader_name: str,
    node_ids: Iterable[str],
    scope: str | None,
    fetch: Callable[[UnitOfWork, list[UUID]], Awaitable[Mapping[UUID, D]]],
    to_node: Callable[[D], N],
) -> list[N | None]:
    """Nodes for `node_ids` in order; a malformed, missing or foreign id gives None."""
    uow = await info.context.require(scope)
    loader = loaders.nodes(info, loader_name, uow, fetch)
    results: list[D | None] = [
        await loader.load(key) if (key := parse_uuid(raw)) else None for raw in node_ids
    ]
    return [to_node(item) if item is not None else None for item in results]
