"""The `workspace` field: the caller's workspace."""

from strawberry.types import Info

from api.graphql.types.workspace import WorkspaceNode
from domain import workspaces


async def workspace(info: Info) -> WorkspaceNode:
    uow = await info.context.uow()
    return WorkspaceNode.from_domain(await workspaces.current_workspace(uow))
