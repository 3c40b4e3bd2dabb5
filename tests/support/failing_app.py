"""An ASGI app whose start-up always fails, for the process supervisor's tests."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette


@asynccontextmanager
async def _lifespan(_app: Starlette) -> AsyncIterator[None]:
    raise RuntimeError("this app never starts")
    yield  # pragma: no cover - unreachable, makes this a generator


app = Starlette(lifespan=_lifespan)
