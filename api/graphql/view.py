"""The Starlette GraphQL endpoint."""

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from api.graphql.context import Context


class GraphQLView(GraphQL[Context, None]):
    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(request, response, request.app.state.cdp)  # type: ignore[arg-type]

    async def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        context: Context = kwargs["context"] if "context" in kwargs else args[3]
        try:
            return await super().execute_operation(*args, **kwargs)
        finally:
            await context.close()
