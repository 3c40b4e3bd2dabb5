"""The Starlette application."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import api.contexts  # noqa: F401 - every context registers itself
from api.graphql.schema import build_schema
from api.graphql.state import AppState
from api.graphql.view import GraphQLView
from api.http import consent_links, email_tracking, health, oauth, tracking_api, webhooks
from api.http.observability import RequestContext, metrics
from api.settings import Settings
from delivery.tracking import conversions
from delivery.tracking.capture import HitWriter
from delivery.tracking.tokens import Tokens
from domain import broker as brokers
from domain.clock import Clock, SystemClock
from domain.db import create_engine, session_factory
from domain.outbox import OutboxRelay
from domain.uow import UnitOfWork


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"error": "internal error", "request_id": request.scope.get("state", {}).get("request_id")},
        status_code=500,
    )


def create_app(settings: Settings, *, database_url: str, clock: Clock | None = None) -> Starlette:
    """Build the app. `database_url` is resolved by the caller (embedded or configured)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        role = settings.app_db_role or None
        engine = create_engine(
            database_url, role=role, pool_size=settings.db_pool_size, timeouts=settings.db_timeouts
        )
        sessions = session_factory(engine)
        broker = brokers.install(
            brokers.make_broker(settings.broker_url, database_url=database_url, role=role)
        )
        relay = OutboxRelay(sessions, broker)
        app.state.cdp = AppState(
            settings=settings,
            engine=engine,
            sessions=sessions,
            broker=broker,
            relay=relay,
            clock=clock or SystemClock(),
            secret=settings.secret(),
        )
        app.state.tracking_writer = tracking_api.writer(app.state.cdp)
        app.state.link_tokens = Tokens(
            app.state.cdp.secret, lifetime=timedelta(days=settings.tracking_link_days)
        )
        state = app.state.cdp

        def units(workspace_id: UUID) -> UnitOfWork:
            return UnitOfWork(sessions, workspace_id=workspace_id, clock=state.clock,
                              on_commit=relay.wake)  # fmt: skip

        app.state.hits = HitWriter(units)
        conversions.configure(settings.attribution_days)
        # The API relays what its own commits wrote; the workers poll for the rest.
        tasks = [asyncio.create_task(app.state.hits.run()),
                 asyncio.create_task(relay.run(interval=None))]  # fmt: skip
        try:
            yield
        finally:
            for task in tasks:  # the hit writer stores what it holds before it ends
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await engine.dispose()
            await asyncio.to_thread(broker.close)

    graphql = GraphQLView(
        build_schema(settings),
        graphql_ide=None if settings.production else "graphiql",
        allow_queries_via_get=True,
    )
    return Starlette(
        debug=False,
        routes=[
            Route("/healthz", health.healthz, methods=["GET"]),
            Route("/readyz", health.readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/oauth/token", oauth.token, methods=["POST"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            *tracking_api.routes,
            *email_tracking.routes,
            *consent_links.routes,
            *webhooks.routes,
        ],
        middleware=[Middleware(RequestContext)],
        exception_handlers={Exception: _internal_error},
        lifespan=lifespan,
    )
