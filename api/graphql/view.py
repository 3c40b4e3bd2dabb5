"""The Starlette GraphQL endpoint."""

import json
from http import HTTPStatus
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from api.graphql.context import Context
from api.graphql.errors import answered
from api.http.bodies import MalformedBodyError, parse_json

_CONTEXTS = "cdp.graphql_contexts"


class GraphQLView(GraphQL[Context, None]):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Closed once the answer has gone out: ending a read-only
            # transaction costs a round trip that the client need not wait for.
            # Mutations have committed inside their resolvers by then.
            for context in scope.pop(_CONTEXTS, ()):
                await context.close()

    async def run(  # type: ignore[override]
        self, request: Request | WebSocket, context: Any = UNSET, root_value: Any = UNSET
    ) -> Response | WebSocket:
        # strawberry answers a request it cannot take in plain text; a client
        # of this API reads JSON, errors included.
        try:
            return await super().run(request, context, root_value)
        except HTTPException as error:
            return JSONResponse(
                {"errors": [{"message": error.reason, "extensions": {"code": _code(error)}}]},
                status_code=error.status_code,
            )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        context = Context(request, response, request.app.state.cdp)  # type: ignore[arg-type]
        request.scope.setdefault(_CONTEXTS, []).append(context)
        return context

    def parse_json(self, data: str | bytes) -> Any:
        try:
            value = parse_json(data)
        except MalformedBodyError as error:
            raise HTTPException(400, error.reason) from None
        if not isinstance(value, dict | list):
            raise HTTPException(400, "a GraphQL request must be a JSON object")
        return value

    def decode_json(self, data: str | bytes) -> object:
        # orjson where it reads a body exactly, the standard library elsewhere
        # (api.http.bodies.parse_json; the cost is in bench/README.md).
        return parse_json(data)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData) and not isinstance(data.operation_name, str | None):
            raise HTTPException(400, "`operationName` must be a string or null, if provided")
        return data

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Every answer passes here, also one whose error escaped strawberry's
        # extensions (a document that does not parse is one): so every error
        # gets its code here, and in production a fault of ours its mask.
        if result.errors:
            production = request.app.state.cdp.settings.production
            result.errors = [answered(e, mask_internal=production) for e in result.errors]
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> bytes | str:
        try:
            return orjson.dumps(data)
        # What orjson does not write: an integer beyond 64 bits, a lone
        # surrogate that an error message quotes back, JSON nested very deep.
        except TypeError:
            return json.dumps(data, separators=(",", ":"))


def _code(error: HTTPException) -> str:
    try:
        return HTTPStatus(error.status_code).name
    except ValueError:
        return "BAD_REQUEST"
