"""Liveness and readiness."""

import asyncio
import time

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from domain import broker as brokers

READY_TIMEOUT = 3.0
# A load balancer asks for readiness every few seconds; the relay is asked at most this
# often, so that readiness probes neither load it nor wait on it each time.
RELAY_CHECK_SECONDS = 30.0


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _relay_answers(host: str, port: int) -> None:
    """Connect to the SMTP relay and read its greeting; raise when it does not answer 220."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        greeting = await reader.readline()
        if not greeting.startswith(b"220"):
            raise ConnectionError(greeting[:80].decode(errors="replace").strip() or "no greeting")
        writer.write(b"QUIT\r\n")
    finally:
        writer.close()


async def _relay_problem(request: Request) -> str | None:
    """Why the SMTP relay does not answer, or None; the last answer kept for a while."""
    kept: tuple[float, str | None] | None = getattr(request.app.state, "relay_check", None)
    if kept is not None and time.monotonic() - kept[0] < RELAY_CHECK_SECONDS:
        return kept[1]
    relay = request.app.state.cdp.settings.relay()
    problem = None
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await _relay_answers(relay.host, relay.port)
    except Exception as exc:  # noqa: BLE001 - any failure means it does not answer
        problem = f"{relay.host}:{relay.port}: {type(exc).__name__}"
    request.app.state.relay_check = (time.monotonic(), problem)
    return problem


async def readyz(request: Request) -> JSONResponse:
    """503 when the API cannot serve (database, broker); a relay that does not answer is
    reported as `degraded`: requests are served, and mail waits and is retried."""
    state = request.app.state.cdp
    problems: dict[str, str] = {}
    degraded: dict[str, str] = {}
    try:
        async with asyncio.timeout(READY_TIMEOUT), state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        problems["database"] = type(exc).__name__
    try:
        await asyncio.wait_for(asyncio.to_thread(brokers.check, state.broker), READY_TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        problems["broker"] = type(exc).__name__
    relay_problem = await _relay_problem(request)
    if relay_problem is not None:
        degraded["relay"] = relay_problem
    if problems:
        return JSONResponse({"status": "unavailable", "failing": problems, "degraded": degraded},
                            status_code=503)  # fmt: skip
    return JSONResponse({"status": "ready", "degraded": degraded})
