"""The ingest part of bench.journeys: /v1/batch with and without 10 active event-triggered journeys."""

import asyncio
import statistics
from typing import Any
from uuid import UUID

import psycopg

from bench import ingest
from bench.common import create_workspace, fresh_database
from bench.journeys import _in_uow, _send_step, _shop
from consent import audit
from delivery.journeys import services
from domain.uow import UnitOfWork

ACTOR = audit.Actor.system("bench")
# Every event name of the load triggers two journeys; each exits on another.
TRIGGERS = ["Product Viewed", "Product Added", "Page Scrolled", "Order Completed", "Cart Viewed"]


def _journeys(template_id: UUID) -> list[dict[str, Any]]:
    found = []
    for n in range(10):
        name = TRIGGERS[n % len(TRIGGERS)]
        other = TRIGGERS[(n + 1) % len(TRIGGERS)]
        found.append({"trigger": {"event": name}, "exitOn": [{"event": other}],
                      "reentry": "after_exit",
                      "steps": [{"wait": {"hours": 1 + n}}, _send_step(template_id)]})  # fmt: skip
    return found


async def _activate(uow: UnitOfWork, template_id: UUID) -> None:
    for n, definition in enumerate(_journeys(template_id)):
        row = await services.create(uow, ACTOR, services.JourneyInput(f"j{n}", definition))
        await services.activate(uow, ACTOR, row.id)


def _one(events: list[dict[str, object]], args: Any, *, with_journeys: bool) -> tuple[float, int]:
    with fresh_database() as url:
        ws = create_workspace(url)
        if with_journeys:
            workspace = UUID(ws["workspace_id"])
            template = asyncio.run(_in_uow(url, workspace, _shop))
            asyncio.run(_in_uow(url, workspace, lambda uow: _activate(uow, template)))
        load = ingest.measure(url, ws["write_key"], events, args)
        with psycopg.connect(url) as db:
            queued = db.execute("SELECT sum(events) FROM journey_inbox").fetchone()
    return load.rate, int(queued[0] or 0) if queued else 0


def part_ingest(count: int = 100_000, rounds: int = 2) -> None:
    args = ingest.arguments().parse_args([])
    events = ingest.make_events(count)
    without: list[float] = []
    with_them: list[float] = []
    queued = 0
    for _ in range(rounds):  # alternated, as the machine's speed drifts
        without.append(_one(events, args, with_journeys=False)[0])
        rate, queued = _one(events, args, with_journeys=True)
        with_them.append(rate)
    best, base = max(with_them), max(without)
    middle, base_middle = statistics.median(with_them), statistics.median(without)
    print(
        f"ingest with 10 active event-triggered journeys: best {best:,.0f} events/s "
        f"(runs {', '.join(f'{r:,.0f}' for r in with_them)}); {queued:,} events queued for them"
    )
    print(
        f"baseline without journeys: best {base:,.0f} events/s "
        f"(runs {', '.join(f'{r:,.0f}' for r in without)})"
    )
    print(
        f"ratio with / without: {best / base:.3f} (best of each), "
        f"{middle / base_middle:.3f} (medians)"
    )
    print(f"target >= 0.8: {'MET' if best / base >= 0.8 else 'NOT MET'}")
