"""Per-request GraphQL context: lazy auth, one unit of work, DataLoaders.

Authentication is lazy on purpose: a document is parsed and validated
(depth, aliases, tokens, cost) before anything touches the database, so a
rejected document costs no SQL at all.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader

from api import auth
from api.graphql.state import AppState
from domain.credentials import Principal
from domain.errors import AuthorizationError
from domain.uow import UnitOfWork


class Context:
    def __init__(self, request: Request, response: Response | None, state: AppState) -> None:
        self.request = request
        self.response = response
        self.state = state
        self._stack = AsyncExitStack()
        self._auth: asyncio.Task[Principal] | None = None
        self._loaders: dict[str, DataLoader[Any, Any]] = {}
        self._opening: asyncio.Task[UnitOfWork] | None = None

    # Sibling fields resolve concurrently. Opening the unit of work and
    # authenticating are shared tasks, so they happen once, and every waiting
    # resolver resumes in the same loop iteration, which keeps their DataLoader
    # loads in one batch.

    async def _open(self) -> UnitOfWork:
        return await self._stack.enter_async_context(self.state.uow())

    async def uow(self) -> UnitOfWork:
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        return await self._opening

    async def _authenticate(self) -> Principal:
        token = auth.bearer_token(self.request.headers.get("authorization"))
        return await auth.authenticate(await self.uow(), token, secret=self.state.secret)

    async def principal(self) -> Principal:
        if self._auth is None:
            self._auth = asyncio.ensure_future(self._authenticate())
        return await self._auth

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
        for task in (self._auth, self._opening):
            if task is not None and task.done() and not task.cancelled():
                task.exception()  # already raised to a resolver; mark it retrieved
        await self._stack.aclose()
