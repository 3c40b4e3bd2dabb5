"""Liveness and readiness."""

import asyncio

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from domain import broker as brokers

READY_TIMEOUT = 3.0


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state = request.app.state.cdp
    problems: dict[str, str] = {}
    try:
        async with asyncio.timeout(READY_TIMEOUT), state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        problems["database"] = type(exc).__name__
    try:
        await asyncio.wait_for(asyncio.to_thread(brokers.check, state.broker), READY_TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        problems["broker"] = type(exc).__name__
    if problems:
        return JSONResponse({"status": "unavailable", "failing": problems}, status_code=503)
    return JSONResponse({"status": "ready"})
