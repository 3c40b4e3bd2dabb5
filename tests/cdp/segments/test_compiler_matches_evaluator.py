"""The compiled SQL selects exactly the profiles that the Python evaluator accepts.

One workspace is seeded with varied data: traits of every JSON type (and
dates among strings), computed traits, identities, events with properties
inside and outside windows (and in the future), consent records and
suppression entries (some on merged-away profiles, some stamped after now),
memberships of two segments, and restricted profiles. Hypothesis then draws
definitions; for each, the full statement and the statement limited to a
few profiles must agree with `evaluate` on every live, unrestricted profile.
"""

import importlib.util
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdp.segments import compiler, definition, evaluate
from cdp.segments.model import INSTANT_PATTERN, Node, parse_instant
from consent.keys import Keys
from consent.model import ConsentRecord, ConsentStatus, Suppression, SuppressionReason, decide
from domain.db import WORKSPACE_SETTING, with_role
from tests.cdp.segments import strategies
from tests.conftest import new_workspace
from tests.support import factories
from tests.support.database import APP_ROLE, SECRET

NOW = datetime(2024, 6, 15, 12, tzinfo=UTC)
SEGMENT_NAMES = ("seg-a", "seg-b")
ages = [None, -1, 0, 1, 2, 3, 5, 0.5, 1.5, 2.0, "3", "pro", True, False, [1, 2], {"a": 1}]
plans = ["pro", "free", "p", "", "Pro", "Berlin", 1, 0.5, True, None, ["pro"]]
cities = ["Berlin", "berlin", "Bern", "", 3, None, True]
tags = [["pro", "free"], ["p"], [1, 0.5], [], [["pro"]], "pro-tags", "free", 2, ["Berlin", 1]]
dates = [
    "2024-06-15T11:00:00Z", "2024-06-15T12:30:00+00:00", "2024-06-14T09:30", "2024-06-10",
    "2024-06-15 10:00:00.5", "2024-05-16T12:00:00+02:00", "2024-03-01", "2023-06-15",
    "2024-02-30", "2024-06-15T25:00", "not a date", "2024-06-14T12:00:00.123456-0130",
    *strategies.INSTANTS,
]  # fmt: skip
scores = [*dates, 0, 1, 2.0, -0.5, "pro", "p", "", None, True]
names = [*strategies.EVENTS, "Other", None]
revenues = [None, 0, 1, 2, 0.5, 1.5, "2", "pro", True]
skus = ["pro", "free", "p", "", "Berlin", 1, None, ["pro"]]


@dataclass(repr=False)
class Seeded:
    workspace_id: uuid.UUID
    segment_ids: dict[str, uuid.UUID]
    facts: dict[uuid.UUID, evaluate.ProfileFacts] = field(default_factory=dict)
    subset: list[uuid.UUID] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Seeded({len(self.facts)} profiles)"


def _maybe(rng: random.Random, key: str, choices: list[Any], into: dict[str, Any]) -> None:
    if rng.random() < 0.8:
        into[key] = rng.choice(choices)


def _traits(rng: random.Random) -> dict[str, Any]:
    traits: dict[str, Any] = {}
    _maybe(rng, "age", ages, traits)
    _maybe(rng, "plan", plans, traits)
    _maybe(rng, "tags", tags, traits)
    _maybe(rng, "score", scores, traits)
    roll = rng.random()
    if roll < 0.5:
        traits["address"] = {"city": rng.choice(cities)}
    elif roll < 0.6:
        traits["address"] = rng.choice(["Berlin", ["Berlin"], None, {}])
    return traits


def _computed(rng: random.Random) -> dict[str, Any]:
    computed: dict[str, Any] = {}
    _maybe(rng, "order_count", [0, 1, 2, 3, 5, None], computed)
    _maybe(rng, "total_revenue", [0.0, 0.5, 1.5, 2.0, 3, -0.5, None], computed)
    _maybe(rng, "average_order_value", [0.5, 1.5, 2.0, None], computed)
    for key in ("first_seen", "last_seen", "last_order_at"):
        _maybe(rng, key, [*dates, None, 3], computed)
    return computed


def _properties(rng: random.Random) -> dict[str, Any]:
    props: dict[str, Any] = {}
    _maybe(rng, "revenue", revenues, props)
    _maybe(rng, "sku", skus, props)
    _maybe(rng, "category", ["pro", "free", 2, None, {"name": "pro"}], props)
    return props


def _current(records: list[ConsentRecord]) -> list[ConsentRecord]:
    """The latest record per purpose and channel as of NOW, as the ledger reads them."""
    latest: dict[tuple[str, str], ConsentRecord] = {}
    for r in sorted(records, key=lambda r: (r.recorded_at, r.id)):
        if r.recorded_at <= NOW:
            latest[r.purpose, r.channel] = r
    return list(latest.values())


def _contact(records: list[ConsentRecord], entries: list[Suppression]) -> Any:
    current = _current(records)
    applied = [s for s in entries if s.created_at <= NOW]
    return lambda channel, purpose: decide(
        channel=channel, purpose=purpose, records=current, suppressions=applied
    )


def _seed(database_url: str) -> Seeded:
    rng = random.Random(20261202)
    keys = Keys(SECRET)
    ws = new_workspace(database_url, "segments-compiler").workspace.id
    seeded = Seeded(ws, {name: uuid.uuid4() for name in SEGMENT_NAMES})
    with factories.seeding(database_url) as db:
        for index in range(70):
            traits, computed = _traits(rng), _computed(rng)
            kinds = [k for k in strategies.IDENTIFIER_KINDS if rng.random() < 0.5]
            pairs = [(kind, f"{kind}-{index}@x.test") for kind in kinds]
            pid = factories.profile(db, ws, traits=traits, computed=computed, identifiers=pairs)
            # Some people have an older profile merged into theirs, with records of its own.
            ids = [pid]
            if rng.random() < 0.2:
                # A merge moves identities to the survivor; consent records stay.
                ids.append(factories.profile(db, ws, merged_into=pid))
                factories.identity(db, ws, pid, "phone", f"old-{index}")
                pairs.append(("phone", f"old-{index}"))
            events: list[evaluate.EventFact] = []
            for _ in range(rng.randrange(7)):
                at = NOW - timedelta(hours=rng.choice([-2, 0, 1, 12, 23, 25, 30, 47, 49, 100]))
                at -= timedelta(days=rng.choice([0, 0, 1, 6, 7, 8, 29, 31, 89, 91, 400]))
                fact = evaluate.EventFact(rng.choice(names), at, _properties(rng))
                factories.event(
                    db, ws, pid, name=fact.name, timestamp=at, properties=fact.properties
                )
                events.append(fact)
            records: list[ConsentRecord] = []
            for _ in range(rng.randrange(4)):
                owner = rng.choice(ids)
                record = ConsentRecord(
                    id=uuid.uuid4(), profile_id=owner,
                    purpose=rng.choice(strategies.PURPOSES),
                    channel=rng.choice(strategies.CHANNELS),
                    status=rng.choice(list(ConsentStatus)), lawful_basis="consent",
                    source="test", notice_version=None, actor="test",
                    recorded_at=NOW - timedelta(days=rng.randrange(-2, 30), seconds=rng.random()),
                )  # fmt: skip
                factories.consent_record(
                    db, ws, owner, status=record.status.value, purpose=record.purpose,
                    channel=record.channel, recorded_at=record.recorded_at,
                )  # fmt: skip
                records.append(record)
            entries: list[Suppression] = []
            for kind, value in pairs:
                if rng.random() < 0.3:
                    entry = Suppression(
                        identifier_kind=kind,
                        channel=rng.choice(["*", *strategies.CHANNELS]),
                        purpose=rng.choice(["*", *strategies.PURPOSES]),
                        reason=rng.choice(
                            [SuppressionReason.UNSUBSCRIBED, SuppressionReason.UNSUBSCRIBED,
                             SuppressionReason.MANUAL, SuppressionReason.HARD_BOUNCE]
                        ),
                        source="test",
                        created_at=NOW - timedelta(days=rng.randrange(-2, 30), hours=1),
                    )  # fmt: skip
                    factories.suppression(
                        db, ws, digest=keys.identifier_digest(ws, kind, value),
                        reason=entry.reason.value, identifier_kind=kind, channel=entry.channel,
                        purpose=entry.purpose, created_at=entry.created_at,
                    )  # fmt: skip
                    entries.append(entry)
            member_of = frozenset(s for s in seeded.segment_ids.values() if rng.random() < 0.4)
            for segment_id in member_of:
                factories.segment_members(db, ws, segment_id, [pid])
            if rng.random() < 0.1:
                factories.restricted(db, ws, [pid], at=NOW - timedelta(days=1))
            else:
                seeded.facts[pid] = evaluate.ProfileFacts(
                    traits=traits,
                    computed=computed,
                    identifier_kinds=frozenset(kind for kind, _ in pairs),
                    events=tuple(events),
                    segments=member_of,
                    contact=_contact(records, entries),
                )
        db.commit()
    seeded.subset = sorted(seeded.facts)[::4]
    return seeded


@pytest.fixture(scope="module")
def seeded(database_url: str) -> Seeded:
    return _seed(database_url)


@pytest.fixture(scope="module")
def app_connection(database_url: str, seeded: Seeded) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the runtime role, in the seeded workspace, as the services run."""
    with psycopg.connect(with_role(database_url, APP_ROLE), autocommit=True) as conn:
        conn.execute(
            "SELECT set_config(%s, %s, false)", (WORKSPACE_SETTING, str(seeded.workspace_id))
        )
        yield conn


def _members(conn: psycopg.Connection[Any], query: compiler.CompiledQuery) -> set[uuid.UUID]:
    return {row[0] for row in conn.execute(query.sql, query.params, prepare=False)}


def _parse(raw: dict[str, Any], seeded: Seeded) -> Node:
    return definition.parse(raw, segment_id=seeded.segment_ids.get)


def _check(raw: dict[str, Any], seeded: Seeded, conn: psycopg.Connection[Any]) -> None:
    node = _parse(raw, seeded)
    pads = Keys(SECRET).digest_pads(seeded.workspace_id)
    expected = {pid for pid, facts in seeded.facts.items() if evaluate.evaluate(node, facts, NOW)}
    full = compiler.members_query(node, workspace_id=seeded.workspace_id, now=NOW, digest_pads=pads)
    assert _members(conn, full) == expected, raw
    limited = compiler.members_query(
        node, workspace_id=seeded.workspace_id, now=NOW, profile_ids=seeded.subset,
        digest_pads=pads,
    )  # fmt: skip
    assert _members(conn, limited) == expected & set(seeded.subset), raw


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=strategies.definitions(segment_ids=SEGMENT_NAMES))
def test_random_definitions_select_what_the_evaluator_accepts(raw, seeded, app_connection):
    _check(raw, seeded, app_connection)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raws=st.lists(strategies.definitions(segment_ids=SEGMENT_NAMES), min_size=2, max_size=5),
    asked=st.randoms(use_true_random=False),
)
def test_the_verdicts_of_several_definitions_at_once_are_each_ones_own(
    raws, asked, seeded, app_connection
):
    """The upkeep asks about many definitions in one statement, which reads each profile's
    events once for all of them: each definition's verdicts stay its own, whichever are asked."""
    nodes = [_parse(raw, seeded) for raw in raws]
    masks = [asked.getrandbits(len(nodes)) for _ in seeded.subset]
    query = compiler.verdicts_query(
        nodes, masks, workspace_id=seeded.workspace_id, now=NOW, profile_ids=seeded.subset,
        digest_pads=Keys(SECRET).digest_pads(seeded.workspace_id),
    )  # fmt: skip
    found = {
        (row[0], row[1]): row[2]
        for row in app_connection.execute(query.sql, query.params, prepare=False)
    }
    expected = {
        (pid, n): pid in seeded.facts and evaluate.evaluate(node, seeded.facts[pid], NOW)
        for pid, mask in zip(seeded.subset, masks, strict=True)
        for n, node in enumerate(nodes)
        if mask & (1 << n)
    }
    assert found == expected, raws


@pytest.mark.parametrize(
    "raw",
    [
        {"trait": "age", "op": "eq", "value": 1},
        {"not": {"trait": "age", "op": "lt", "value": 3}},
        {"trait": "tags", "op": "contains", "value": "pro"},
        {"trait": "address.city", "op": "eq", "value": "Berlin"},
        {"trait": "score", "op": "within", "value": {"days": 7}},
        {"computed": "lastOrderAt", "op": "before", "value": {"days": 90}},
        {"event": "Order Completed", "count": {"op": "eq", "value": 0}, "within": {"days": 30}},
        {"contactable": {"channel": "email", "purpose": "newsletter"}},
        {"contactable": {"channel": "email", "purpose": "transactional"}},
        {"segment": "seg-a"},
    ],
)
def test_each_kind_of_condition_selects_some_profiles_and_not_all(raw, seeded, app_connection):
    """The data set discriminates: each sample condition holds for some profiles and fails for others."""
    node = _parse(raw, seeded)
    verdicts = {evaluate.evaluate(node, f, NOW) for f in seeded.facts.values()}
    assert verdicts == {True, False}
    _check(raw, seeded, app_connection)


def test_the_sql_reads_dates_as_the_python_does(app_connection):
    samples = [*dates, "2024-06-15T12:00:00.1234567Z", "2024-13-01", "0999-01-01", "2024-06-15\n"]
    for text in samples:
        row = app_connection.execute("SELECT cdp_instant(%s)", (text,)).fetchone()
        assert row is not None
        assert row[0] == parse_instant(text), text


def test_the_migration_reads_dates_with_the_models_pattern():
    path = Path(__file__).parents[3] / "migrations" / "versions" / "0014_segments.py"
    spec = importlib.util.spec_from_file_location("migration_0014", path)
    assert spec is not None
    assert spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.INSTANT_PATTERN == INSTANT_PATTERN
