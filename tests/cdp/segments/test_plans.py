"""What the compiled statements cost: the plans of the sample rules, and statements per evaluation.

A full evaluation, and the upkeep of a batch of profiles, are a fixed number
of statements whatever the number of profiles; the events of a few profiles
are read through the index by profile and time, and a full evaluation hashes
each set of profiles once.
"""

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from sqlalchemy import event

from cdp.segments import compiler, definition, services, upkeep
from cdp.segments.repository import SegmentRow
from consent.keys import Keys
from domain import changes
from domain.db import WORKSPACE_SETTING, create_engine, session_factory, with_role
from domain.ids import new_id
from domain.uow import UnitOfWork
from tests.conftest import new_workspace
from tests.support import factories
from tests.support.database import APP_ROLE, SECRET

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
PROFILES = 3000
SAMPLES = {
    "trait": {"trait": "plan", "op": "eq", "value": "pro"},
    "behaviour": {
        "all": [
            {
                "event": "Order Completed",
                "within": {"days": 30},
                "count": {"op": "gte", "value": 2},
            },
            {"event": "Email Opened", "within": {"days": 14}, "count": {"op": "eq", "value": 0}},
        ]
    },
    "contact": {"contactable": {"channel": "email", "purpose": "newsletter"}},
}


@pytest.fixture(scope="module")
def seeded(database_url: str) -> tuple[UUID, list[UUID]]:
    ws = new_workspace(database_url, "plans").workspace.id
    plans = ["free"] * 9 + ["pro"]
    with factories.seeding(database_url) as db:
        ids = factories.profiles(db, ws, PROFILES, traits=lambda i: {"plan": plans[i % 10], "n": i})
        factories.events(
            db, ws, PROFILES * 3,
            profile_id=lambda i: ids[i % PROFILES],
            name=lambda i: ("Order Completed", "Email Opened", "Page Viewed")[i % 3],
            timestamp=lambda i: NOW - timedelta(days=i % 40),
        )  # fmt: skip
        db.commit()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE profiles")
        conn.execute("ANALYZE events")
    return ws, ids


def _plan(
    database_url: str, ws: UUID, query: compiler.CompiledQuery, *, indexable: bool = False
) -> str:
    """The JSON plan, as the runtime role (under row-level security) gets it.

    `indexable` forbids sequential scans: on tables this small a scan can be
    the cheaper plan, and the question is whether indexes can serve.
    """
    with psycopg.connect(with_role(database_url, APP_ROLE), autocommit=True) as conn:
        conn.execute("SELECT set_config(%s, %s, false)", (WORKSPACE_SETTING, str(ws)))
        if indexable:
            conn.execute("SET enable_seqscan = off")
        rows = conn.execute(
            "EXPLAIN (FORMAT JSON) " + query.sql, query.params, prepare=False
        ).fetchall()
    return json.dumps(rows[0][0])


def _query(ws: UUID, name: str, profile_ids: list[UUID] | None = None) -> compiler.CompiledQuery:
    node = definition.parse(SAMPLES[name], segment_id=lambda _: None)
    return compiler.members_query(
        node, workspace_id=ws, now=NOW, profile_ids=profile_ids,
        digest_pads=Keys(SECRET).digest_pads(ws),
    )  # fmt: skip


def test_a_trait_rule_is_one_pass_over_the_workspaces_live_profiles(database_url, seeded):
    """Row-level security keeps PostgreSQL from using the GIN index on traits for the runtime
    role (`@>` is not leakproof), so a trait rule reads the workspace's live profiles once."""
    ws, _ = seeded
    plan = _plan(database_url, ws, _query(ws, "trait"))
    assert "SubPlan" not in plan
    assert plan.count('"Relation Name": "profiles"') == 1


def test_the_events_of_a_few_profiles_are_read_through_their_index(database_url, seeded):
    ws, ids = seeded
    plan = _plan(database_url, ws, _query(ws, "behaviour", ids[:3]))
    assert "ix_events_profile_time" in plan or "profile_id_timestamp_idx" in plan


def test_a_full_evaluation_reads_each_event_set_once(database_url, seeded):
    ws, _ = seeded
    plan = _plan(database_url, ws, _query(ws, "behaviour"))
    # "Ordered twice" is one grouped pass over the window's events, hashed;
    # "opened nothing" an anti-join; neither a subquery per profile.
    assert plan.count('"Strategy": "Hashed"') >= 1
    assert '"Join Type": "Anti"' in plan
    subplans = [f for f in re.findall(r'"Filter": "([^"]*)"', plan) if "SubPlan" in f]
    assert all("hashed SubPlan" in f for f in subplans), subplans


def _nodes(plan: Any) -> Iterator[dict[str, Any]]:
    if isinstance(plan, dict):
        if "Node Type" in plan:
            yield plan
        for value in plan.values():
            yield from _nodes(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from _nodes(value)


def test_the_contact_gate_of_a_few_profiles_reads_only_theirs(database_url, seeded):
    ws, ids = seeded
    plan = json.loads(_plan(database_url, ws, _query(ws, "contact", ids[:3]), indexable=True))
    scans = [n for n in _nodes(plan) if n.get("Relation Name") in {"profiles", "identities"}]
    assert scans
    assert all(n["Node Type"] != "Seq Scan" for n in scans), [
        (n["Node Type"], n["Relation Name"], n.get("Filter")) for n in scans
    ]


class _Counter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement)


def _count_statements(database_url: str, ws: UUID, work: Any) -> int:
    async def run() -> int:
        engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
        counter = _Counter()
        event.listen(engine.sync_engine, "before_cursor_execute", counter)
        try:
            async with UnitOfWork(session_factory(engine), workspace_id=ws) as uow:
                await work(uow)
                await uow.rollback()
        finally:
            await engine.dispose()
        return len(counter.statements)

    return asyncio.run(run())


def _segment_row(ws: UUID, name: str) -> SegmentRow:
    parsed = services.parse(SAMPLES[name])
    return SegmentRow(
        id=new_id(), name=name, description=None, definition=parsed.canonical, version=1,
        computed_version=0, computed_at=None, uses_time=True, evaluated_at=None,
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_full_evaluation_is_the_same_few_statements_for_any_number_of_members(
    database_url, seeded, name
):
    ws, _ = seeded
    row = _segment_row(ws, name)

    async def evaluate(uow: UnitOfWork) -> None:
        from cdp.segments import repository

        await repository.insert_segment(uow, row)
        await services.recompute(uow, Keys(SECRET), row.id)

    # Insert, lock, read, work memory and the one membership statement,
    # the outbox job of the change, and the mark.
    assert _count_statements(database_url, ws, evaluate) <= 8


def test_upkeep_of_many_profiles_is_one_statement_per_segment(database_url, seeded):
    ws, ids = seeded

    async def refresh(uow: UnitOfWork, touched: list[UUID]) -> None:
        from cdp.segments import repository

        for name in SAMPLES:
            await repository.insert_segment(uow, _segment_row(ws, name))
        await upkeep.refresh(
            uow,
            Keys(SECRET),
            {pid: frozenset({changes.event("Order Completed")}) for pid in touched},
        )

    few = _count_statements(database_url, ws, lambda uow: refresh(uow, ids[:2]))
    many = _count_statements(database_url, ws, lambda uow: refresh(uow, ids[:1000]))
    assert few == many
