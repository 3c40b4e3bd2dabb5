"""Per-request GraphQL context: lazy auth, one unit of work, DataLoaders.

Authentication is lazy on purpose: a document is parsed and validated
(depth, aliases, tokens, cost) before anything touches the database, so a
rejected document costs no SQL at all.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader

from api import auth
from api.graphql.state import AppState
from domain import credentials
from domain.credentials import Principal
from domain.errors import AuthorizationError
from domain.uow import Statement, UnitOfWork

T = TypeVar("T")
# A read run by `Context.read`: given the unit of work and the statements to
# send first, it answers with their rows and its own result.
Query = Callable[[UnitOfWork, Sequence[Statement]], Awaitable[tuple[list[list[Any]], T]]]


class Context:
    def __init__(self, request: Request, response: Response | None, state: AppState) -> None:
        self.request = request
        self.response = response
        self.state = state
        self._stack = AsyncExitStack()
        self._auth: asyncio.Future[Principal] | None = None
        self._loaders: dict[str, DataLoader[Any, Any]] = {}
        self._opening: asyncio.Task[UnitOfWork] | None = None
        # True for a query operation, set before it runs (api.graphql.read_only).
        self.read_only = False

    # Sibling fields resolve concurrently. Opening the unit of work and
    # authenticating are shared tasks, so they happen once, and every waiting
    # resolver resumes in the same loop iteration, which keeps their DataLoader
    # loads in one batch.

    async def _open(self) -> UnitOfWork:
        return await self._stack.enter_async_context(self.state.uow(read_only=self.read_only))

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
        _check_scope(await self.principal(), scope)
        return await self.uow()

    async def read(self, scope: str, query: Query[T]) -> T:
        """`require(scope)`, then `query`; an API token not yet checked travels with it.

        `query` gets the unit of work and the statements to send at the head of
        its first round trip, and answers with their rows and its result. The
        token's check raises before the query runs when the token is bad, and its
        scope is checked before the result is handed back: one round trip fewer
        for the first read of a request, and nothing answered unchecked.
        """
        token = auth.bearer_token(self.request.headers.get("authorization"))
        if self._auth is not None or token is None or not auth.is_api_token(token):
            _, result = await query(await self.require(scope), ())
            return result
        uow = await self.uow()
        workspace_id, check = credentials.api_token_check(token, uow.clock.now())
        await uow.select_workspace(workspace_id)
        [rows], result = await query(uow, (check,))
        principal = credentials.api_token_principal(workspace_id, rows)
        if self._auth is None:
            self._auth = asyncio.get_running_loop().create_future()
            self._auth.set_result(principal)
        _check_scope(principal, scope)
        return result

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


def _check_scope(principal: Principal, scope: str | None) -> None:
    if scope is not None and not principal.has_scope(scope):
        raise AuthorizationError(f"this operation requires the {scope!r} scope")
