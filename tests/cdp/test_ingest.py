"""Ingest and identity resolution against a real database."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from cdp import queries, traits
from cdp.ingest import ingest
from cdp.model import Message
from domain.db import create_engine, session_factory, with_role
from domain.uow import UnitOfWork
from tests.support.database import APP_ROLE

T0 = datetime(2026, 5, 1, 9, tzinfo=UTC)


def msg(
    type_="track",
    *,
    at=T0,
    user=None,
    anon=None,
    traits=None,
    name=None,
    props=None,
    previous=None,
    mid=None,
    group_id=None,
) -> Message:
    return Message(
        type=type_,
        message_id=mid or uuid.uuid4().hex,
        timestamp=at,
        received_at=at,
        user_id=user,
        anonymous_id=anon,
        previous_id=previous,
        group_id=group_id,
        name=name,
        traits=traits or {},
        properties=props or {},
        context={"ip": "203.0.113.9"},
    )


async def _ingest_all(database_url, workspace_id, batches, concurrent=False):
    engine = create_engine(database_url, role=APP_ROLE, pool_size=10)
    sessions = session_factory(engine)

    async def one(batch):
        async with UnitOfWork(sessions, workspace_id=workspace_id) as uow:
            await ingest(uow, batch)
            await uow.commit()

    try:
        if concurrent:
            await asyncio.gather(*(one(b) for b in batches))
        else:
            for batch in batches:
                await one(batch)
    finally:
        await engine.dispose()


def run(database_url, workspace, *batches, concurrent=False):
    asyncio.run(_ingest_all(database_url, workspace.workspace.id, batches, concurrent))


def q(database_url, sql, *params):
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()


def profile_of(database_url, ws, kind, value):
    rows = q(
        database_url,
        "SELECT profile_id FROM identities WHERE workspace_id=%s AND kind=%s AND value=%s",
        ws,
        kind,
        value,
    )
    return rows[0][0] if rows else None


async def _second_waits_for_first(
    database_url: str, ws: uuid.UUID, first: list[Message], second: list[Message]
) -> bool:
    """Ingest `first` and hold its transaction open while `second` starts; did `second` wait?"""
    engine = create_engine(database_url, role=APP_ROLE, pool_size=2)
    sessions = session_factory(engine)

    async def later() -> None:
        async with UnitOfWork(sessions, workspace_id=ws) as uow:
            await ingest(uow, second)
            await uow.commit()

    try:
        async with UnitOfWork(sessions, workspace_id=ws) as uow:
            await ingest(uow, first)
            waiting = asyncio.create_task(later())
            await asyncio.sleep(1)
            overlapped = not waiting.done()
            await uow.commit()
        await waiting
        return overlapped
    finally:
        await engine.dispose()


def test_anonymous_history_joins_on_identify(database_url, workspace):
    ws = workspace.workspace.id
    run(
        database_url,
        workspace,
        [
            msg(anon="anon-1", name="Product Viewed", props={"product_id": "p1"}),
            msg(
                anon="anon-1",
                name="Product Added",
                props={"product_id": "p1"},
                at=T0 + timedelta(minutes=1),
            ),
        ],
        [
            msg(
                "identify",
                anon="anon-1",
                traits={"email": " Ann@Example.COM ", "name": "Ann"},
                at=T0 + timedelta(minutes=2),
            )
        ],
    )
    pid = profile_of(database_url, ws, "anonymous_id", "anon-1")
    assert profile_of(database_url, ws, "email", "ann@example.com") == pid
    events = q(
        database_url,
        "SELECT type, name FROM events WHERE workspace_id=%s AND profile_id=%s ORDER BY timestamp",
        ws,
        pid,
    )
    assert events == [("track", "Product Viewed"), ("track", "Product Added"), ("identify", None)]
    traits, computed = q(
        database_url,
        "SELECT traits, computed FROM profiles WHERE workspace_id=%s AND id=%s",
        ws,
        pid,
    )[0]
    assert traits["name"] == "Ann"
    assert computed["cart"]["items"][0]["product_id"] == "p1"


def test_second_device_joins_through_email(database_url, workspace):
    ws = workspace.workspace.id
    run(
        database_url,
        workspace,
        [msg("identify", anon="laptop", traits={"email": "bo@example.com"})],
        [msg(anon="phone", name="Product Viewed")],
        [
            msg(
                "identify",
                anon="phone",
                traits={"email": "bo@example.com"},
                at=T0 + timedelta(hours=1),
            )
        ],
    )
    laptop = profile_of(database_url, ws, "anonymous_id", "laptop")
    assert profile_of(database_url, ws, "anonymous_id", "phone") == laptop
    merges = q(
        database_url,
        "SELECT source_profile_id, target_profile_id, rule, trigger FROM profile_merges WHERE workspace_id=%s",
        ws,
    )
    assert len(merges) == 1
    source, target, rule, trigger = merges[0]
    assert target == laptop
    assert rule == "shared_identifier"
    assert trigger.startswith("message:")
    assert q(
        database_url, "SELECT merged_into FROM profiles WHERE workspace_id=%s AND id=%s", ws, source
    ) == [(laptop,)]
    assert q(
        database_url,
        "SELECT count(*) FROM events WHERE workspace_id=%s AND profile_id=%s",
        ws,
        laptop,
    ) == [(3,)]


def test_different_user_ids_sharing_an_email_stay_apart(database_url, workspace):
    ws = workspace.workspace.id
    run(
        database_url,
        workspace,
        [msg("identify", user="u-1", traits={"email": "shared@example.com"})],
        [
            msg(
                "identify",
                user="u-2",
                traits={"email": "shared@example.com"},
                at=T0 + timedelta(minutes=1),
            )
        ],
    )
    p1 = profile_of(database_url, ws, "user_id", "u-1")
    p2 = profile_of(database_url, ws, "user_id", "u-2")
    assert p1
    assert p2
    assert p1 != p2
    conflicts = q(
        database_url,
        "SELECT kind, value, held_by, claimed_by, rule FROM identity_conflicts WHERE workspace_id=%s",
        ws,
    )
    assert conflicts == [("email", "shared@example.com", p1, p2, "user_id:max_values=1")]
    assert q(database_url, "SELECT count(*) FROM profile_merges WHERE workspace_id=%s", ws) == [
        (0,)
    ]


def test_fifty_concurrent_identifies_make_one_profile(database_url, workspace):
    ws = workspace.workspace.id
    batches = [
        [msg("identify", anon=f"device-{i}", traits={"email": "crowd@example.com"})]
        for i in range(50)
    ]
    run(database_url, workspace, *batches, concurrent=True)
    live = q(
        database_url,
        "SELECT count(*) FROM profiles WHERE workspace_id=%s AND merged_into IS NULL",
        ws,
    )
    assert live == [(1,)]
    pid = profile_of(database_url, ws, "email", "crowd@example.com")
    anon = q(
        database_url,
        "SELECT count(*) FROM identities WHERE workspace_id=%s AND profile_id=%s AND kind='anonymous_id'",
        ws,
        pid,
    )
    assert anon == [(50,)]


def test_repeated_message_id_is_stored_once(database_url, workspace):
    ws = workspace.workspace.id
    m = msg(anon="dup", name="Order Completed", props={"revenue": 10}, mid="fixed-id-1")
    run(database_url, workspace, [m, m], [m])
    assert q(
        database_url,
        "SELECT count(*) FROM events WHERE workspace_id=%s AND message_id='fixed-id-1'",
        ws,
    ) == [(1,)]
    pid = profile_of(database_url, ws, "anonymous_id", "dup")
    computed = q(
        database_url, "SELECT computed FROM profiles WHERE workspace_id=%s AND id=%s", ws, pid
    )[0][0]
    assert computed["order_count"] == 1


def test_out_of_order_events_leave_the_latest_traits(database_url, workspace):
    ws = workspace.workspace.id
    run(
        database_url,
        workspace,
        [msg("identify", user="late", traits={"plan": "pro"}, at=T0 + timedelta(days=2))],
        [msg("identify", user="late", traits={"plan": "free", "city": "Oslo"}, at=T0)],
    )
    pid = profile_of(database_url, ws, "user_id", "late")
    traits, meta = q(
        database_url,
        "SELECT traits, trait_meta FROM profiles WHERE workspace_id=%s AND id=%s",
        ws,
        pid,
    )[0]
    assert traits == {"plan": "pro", "city": "Oslo"}
    assert meta["plan"]["source"] == "identify"
    assert meta["plan"]["at"].startswith("2026-05-03")


def test_alias_merges_anonymous_into_known(database_url, workspace):
    ws = workspace.workspace.id
    run(
        database_url,
        workspace,
        [msg(anon="visitor-9", name="Product Viewed")],
        [msg("identify", user="known-9")],
        [msg("alias", user="known-9", previous="visitor-9", at=T0 + timedelta(minutes=5))],
    )
    assert profile_of(database_url, ws, "anonymous_id", "visitor-9") == profile_of(
        database_url, ws, "user_id", "known-9"
    )


def test_workspaces_never_share_identities(database_url, workspace, other_workspace):
    run(database_url, workspace, [msg("identify", user="same", traits={"email": "x@example.com"})])
    run(
        database_url,
        other_workspace,
        [msg("identify", user="same", traits={"email": "x@example.com"})],
    )
    a = profile_of(database_url, workspace.workspace.id, "user_id", "same")
    b = profile_of(database_url, other_workspace.workspace.id, "user_id", "same")
    assert a != b
    assert q(
        database_url,
        "SELECT count(*) FROM profile_merges WHERE workspace_id IN (%s, %s)",
        workspace.workspace.id,
        other_workspace.workspace.id,
    ) == [(0,)]


def test_identity_probes_stay_index_probes_under_row_level_security(database_url, workspace):
    """The generic plan that a prepared statement settles on probes the identity index.

    Row-level security admits only leakproof operators into an index condition;
    an identifier computed by a JSON operator would make every probe filter the
    whole workspace, which the benchmark showed as a thousandfold slowdown.
    """
    ws = workspace.workspace.id
    with psycopg.connect(with_role(database_url, APP_ROLE)) as conn:
        conn.execute("SELECT set_config('cdp.workspace_id', %s, false)", (str(ws),))
        conn.execute("SET plan_cache_mode = force_generic_plan")
        for name, sql in (
            ("owners", queries.IDENTIFIER_OWNERS),
            ("profiles", queries.OWNERS_AND_PROFILES),
        ):
            positional = sql.replace("%(wanted)s", "$1").replace("%(ws)s", "$2")
            conn.execute(f"PREPARE {name}(text, uuid) AS {positional}")
            wanted = '[{"kind": "email", "value": "a@example.com"}]'
            explain = f"EXPLAIN EXECUTE {name}('{wanted}', '{ws}')"
            plan = "\n".join(row[0] for row in conn.execute(explain))
            assert (
                "Index Cond: ((workspace_id = $2) AND (kind = q.kind) AND (value = q.value))"
                in plan
            ), plan


def test_two_user_ids_reaching_one_profile_at_once_stay_apart(database_url, workspace):
    """Two batches that share no identifier but reach the same profile, at the same moment.

    The second waits for the first's lock on the profile, and must then see the
    user id the first attached: the profile never ends up holding two.
    """
    ws = workspace.workspace.id
    email = f"shared-{uuid.uuid4().hex[:8]}@example.com"
    run(
        database_url,
        workspace,
        [msg("identify", anon="device-a", traits={"email": email})],
        [msg("identify", anon="device-b", traits={"email": email})],
    )
    shared = profile_of(database_url, ws, "anonymous_id", "device-a")
    assert profile_of(database_url, ws, "anonymous_id", "device-b") == shared

    overlapped = asyncio.run(
        _second_waits_for_first(
            database_url,
            ws,
            [msg("identify", anon="device-a", user="person-1")],
            [msg("identify", anon="device-b", user="person-2")],
        )
    )
    assert overlapped, "the second batch did not wait for the first"
    first = profile_of(database_url, ws, "user_id", "person-1")
    second = profile_of(database_url, ws, "user_id", "person-2")
    assert first == shared
    assert second is not None
    assert second != first
    held = q(
        database_url,
        "SELECT value FROM identities WHERE workspace_id=%s AND profile_id=%s AND kind='user_id'",
        ws,
        shared,
    )
    assert held == [("person-1",)]
    conflicts = q(
        database_url,
        "SELECT kind, value FROM identity_conflicts WHERE workspace_id=%s",
        ws,
    )
    assert ("anonymous_id", "device-b") in conflicts


def test_a_batch_that_waits_on_a_profile_merged_away_follows_the_survivor(database_url, workspace):
    """The owner a batch found is merged into another profile while the batch waits for it.

    The batch must see the merge when its lock is granted and write to the
    survivor, not to the profile merged away.
    """
    ws = workspace.workspace.id
    run(
        database_url,
        workspace,
        [msg(anon="phone-1", name="Product Viewed"), msg(anon="phone-2", name="Product Viewed")],
        [msg("alias", anon="phone-2", previous="phone-1")],
        [msg("identify", user="buyer-7")],
    )
    anonymous = profile_of(database_url, ws, "anonymous_id", "phone-2")
    assert profile_of(database_url, ws, "anonymous_id", "phone-1") == anonymous
    known = profile_of(database_url, ws, "user_id", "buyer-7")
    assert known != anonymous

    overlapped = asyncio.run(
        _second_waits_for_first(
            database_url,
            ws,
            # Merges the anonymous profile into the known one, through phone-1 only.
            [msg("identify", anon="phone-1", user="buyer-7")],
            [msg(anon="phone-2", name="Order Completed", mid="late-order")],
        )
    )
    assert overlapped, "the second batch did not wait for the first"
    assert profile_of(database_url, ws, "anonymous_id", "phone-2") == known
    assert q(
        database_url,
        "SELECT profile_id FROM events WHERE workspace_id=%s AND message_id='late-order'",
        ws,
    ) == [(known,)]
    assert q(
        database_url,
        "SELECT count(*) FROM events WHERE workspace_id=%s AND profile_id=%s",
        ws,
        anonymous,
    ) == [(0,)]


def test_an_event_that_changes_nothing_leaves_the_profile_row_alone(database_url, workspace):
    ws = workspace.workspace.id
    traits.not_activity("Receipt Logged")
    run(database_url, workspace, [msg("identify", user="quiet", traits={"plan": "pro"})])
    pid = profile_of(database_url, ws, "user_id", "quiet")

    def row():
        return q(
            database_url,
            "SELECT xmin::text, updated_at, computed FROM profiles WHERE workspace_id=%s AND id=%s",
            ws,
            pid,
        )[0]

    before = row()
    later = T0 + timedelta(hours=1)
    run(database_url, workspace, [msg(user="quiet", name="Receipt Logged", at=later)])
    assert row() == before
    names = q(database_url, "SELECT name FROM events WHERE workspace_id=%s AND profile_id=%s",
              ws, pid)  # fmt: skip
    assert ("Receipt Logged",) in names

    run(database_url, workspace, [msg(user="quiet", name="Page Viewed", at=later)])
    xmin, _, computed = row()
    assert xmin != before[0]
    assert computed["last_seen"].startswith("2026-05-01T10:00")
