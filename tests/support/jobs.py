"""Running a job's body in this process, as a worker would: with the job runtime configured."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from dramatiq.brokers.stub import StubBroker

from domain import jobs
from domain.clock import Clock
from tests.support.database import APP_ROLE, SECRET

T = TypeVar("T")


def as_worker(
    database_url: str, work: Callable[[], Awaitable[T]], *, clock: Clock | None = None
) -> T:
    """Run `work()` with `jobs.runtime()` set up as `cdp worker` sets it, then tear it down."""
    runtime = jobs.configure(
        database_url=database_url, role=APP_ROLE, broker=StubBroker(), clock=clock, secret=SECRET
    )

    async def run() -> T:
        try:
            return await work()
        finally:
            await runtime.close()

    try:
        return asyncio.run(run())
    finally:
        jobs._runtime = None
