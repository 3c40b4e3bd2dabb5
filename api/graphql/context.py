"""Per-request GraphQL context: lazy auth, one unit of work, DataLoaders.

Authentication is lazy on purpose: a document is parsed and validated
(depth, aliases, tokens, cost) before anything touches the database, so a
rejected document costs no SQL at all.
"""

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader

from api import auth
from api.graphql.state import AppState
from domain.credentials import Principal
from domain.errors import AuthenticationError, AuthorizationError
from domain.uow import UnitOfWork


class Context:
    def __init__(self, request: Request, response: Response | None, state: AppState) -> None:
        self.request = request
        self.response = response
        self.state = state
        self._stack = AsyncExitStack()
        self._uow: UnitOfWork | None = None
        self._principal: Principal | None = None
        self._auth_error: AuthenticationError | None = None
        self._loaders: dict[str, DataLoader[Any, Any]] = {}

    async def uow(self) -> UnitOfWork:
        if self._uow is None:
            self._uow = await self._stack.enter_async_context(self.state.uow())
        return self._uow

    async def principal(self) -> Principal:
        if self._principal is not None:
            return self._principal
        if self._auth_error is not None:
            raise self._auth_error
        token = auth.bearer_token(self.request.headers.get("authorization"))
        try:
            self._principal = await auth.authenticate(
                await self.uow(), token, secret=self.state.secret
            )
        except AuthenticationError as exc:
            self._auth_error = exc
            raise
        return self._principal

    async def require(self, scope: str | None = None) -> UnitOfWork:
        """Authenticate, check `scope`, and return the workspace-scoped unit of work."""
        principal = await self.principal()
        if scope is not None and not principal.has_scope(scope):
            raise AuthorizationError(f"this operation requires the {scope!r} scope")
        return await self.uow()

    def loader(
        self, name: str, load: Callable[[Sequence[Any]], Awaitable[Sequence[Any]]]
    ) -> DataLoader[Any, Any]:
        if name not in self._loaders:
            self._loaders[name] = DataLoader(load_fn=load)
        return self._loaders[name]

    async def close(self) -> None:
        await self._stack.aclose()
