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


def _count_statements(database_url: str, ws: UUID, work: Any, setup: Any = None) -> int:
    """How many statements `work` sends (after `setup`, in the same rolled-back unit)."""

    async def run() -> int:
        engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
        counter = _Counter()
        try:
            async with UnitOfWork(session_factory(engine), workspace_id=ws) as uow:
                if setup is not None:
                    await setup(uow)
                event.listen(engine.sync_engine, "before_cursor_execute", counter)
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


def test_upkeep_is_the_same_few_statements_for_any_number_of_profiles_and_segments(
    database_url, seeded
):
    ws, ids = seeded

    def case(names: list[str], touched: list[UUID]) -> int:
        rows = [_segment_row(ws, name) for name in names]

        async def setup(uow: UnitOfWork) -> None:
            from cdp.segments import repository

            for row in rows:
                await repository.insert_segment(uow, row)
                await repository.mark_computed(uow, row.id, 1, NOW)

        async def refresh(uow: UnitOfWork) -> None:
            evaluated = await upkeep.refresh(
                uow,
                Keys(SECRET),
                {pid: frozenset({changes.event("Order Completed"), changes.TRAITS, changes.CONSENT})
                 for pid in touched},
            )  # fmt: skip
            assert evaluated == len(names)

        return _count_statements(database_url, ws, refresh, setup)

    few = case(["trait"], ids[8:10])  # the second is "pro": both move someone
    many = case(sorted(SAMPLES), ids[:1000])
    # Read the segments, lock them, read them again, work memory and the
    # one membership statement, and the outbox job of the change.
    assert few == many <= 6


def _under_subplans(plan: Any, inside: bool = False) -> Iterator[tuple[dict[str, Any], bool]]:
    """Each plan node, and whether it runs inside a subquery of the select list (a SubPlan)."""
    if isinstance(plan, dict):
        if "Node Type" in plan:
            inside = inside or plan.get("Parent Relationship") == "SubPlan"
            yield plan, inside
        for value in plan.values():
            yield from _under_subplans(value, inside)
    elif isinstance(plan, list):
        for value in plan:
            yield from _under_subplans(value, inside)


def test_the_verdicts_of_a_few_profiles_probe_each_ones_rows_whatever_the_statistics(
    database_url, seeded
):
    """Each profile is looked up by id, and its events, identities and consent are read by
    subqueries run per profile, which the planner cannot turn into joins planned on statistics
    (a join planned on stale ones once read every identity of a kind once per profile)."""
    ws, ids = seeded
    rules = [*SAMPLES.values(), {"not": {"identifier": "email"}}]
    nodes = [definition.parse(raw, segment_id=lambda _: None) for raw in rules]
    query = compiler.verdicts_query(
        nodes, [(1 << len(nodes)) - 1] * 3,
        workspace_id=ws, now=NOW, profile_ids=ids[:3], digest_pads=Keys(SECRET).digest_pads(ws),
    )  # fmt: skip
    nodes_found = list(_under_subplans(json.loads(_plan(database_url, ws, query))))
    lookups = [n for n, _ in nodes_found if n.get("Relation Name") == "profiles" and not _]
    assert lookups
    assert all("b.id" in n.get("Index Cond", "") for n in lookups), lookups
    others = {"events", "identities", "consent_records", "suppressions"}
    probes = [
        (n.get("Relation Name"), inside)
        for n, inside in nodes_found
        if n.get("Relation Name") in others or "events_" in n.get("Relation Name", "")
    ]
    assert probes
    assert all(inside for _, inside in probes), probes
