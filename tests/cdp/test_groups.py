"""Segment `group` calls in the profile store: stored, merged per trait by event time, moved on merges."""

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cdp.model import Message
from domain.db import with_role
from tests.cdp.test_ingest import msg, profile_of, q, run
from tests.conftest import new_workspace
from tests.support.database import APP_ROLE

T0 = datetime(2026, 5, 1, 9, tzinfo=UTC)


def group(
    group_id: str,
    traits: dict,
    *,
    at: datetime = T0,
    user: str | None = None,
    anon: str | None = None,
) -> Message:
    return msg("group", at=at, user=user, anon=anon, traits=traits, group_id=group_id)


def identify(*, at: datetime = T0, user=None, anon=None, email=None) -> Message:
    return msg("identify", at=at, user=user, anon=anon, traits={"email": email} if email else {})


def groups_of(database_url, ws, profile_id) -> dict[str, tuple[dict, datetime]]:
    rows = q(
        database_url,
        "SELECT group_id, traits, updated_at FROM profile_groups "
        "WHERE workspace_id=%s AND profile_id=%s",
        ws,
        profile_id,
    )
    return {g: (traits, updated) for g, traits, updated in rows}


def all_group_rows(database_url, ws) -> list[tuple]:
    return q(
        database_url,
        "SELECT profile_id, group_id FROM profile_groups WHERE workspace_id=%s ORDER BY 1, 2",
        ws,
    )


def test_a_group_call_is_stored_with_its_traits(database_url, workspace):
    ws = workspace.workspace.id
    run(database_url, workspace, [group("acme", {"name": "Acme", "plan": "pro"}, user="g-u1")])
    pid = profile_of(database_url, ws, "user_id", "g-u1")
    assert groups_of(database_url, ws, pid) == {"acme": ({"name": "Acme", "plan": "pro"}, T0)}
    # The call is an event too, as it was before groups were stored.
    assert q(
        database_url,
        "SELECT type FROM events WHERE workspace_id=%s AND profile_id=%s",
        ws,
        pid,
    ) == [("group",)]


def test_a_group_call_without_traits_still_records_the_membership(database_url, workspace):
    ws = workspace.workspace.id
    run(database_url, workspace, [group("bare", {}, anon="g-anon-bare")])
    pid = profile_of(database_url, ws, "anonymous_id", "g-anon-bare")
    assert groups_of(database_url, ws, pid) == {"bare": ({}, T0)}


def test_a_later_call_merges_its_traits_into_the_stored_ones(database_url, workspace):
    ws = workspace.workspace.id
    later = T0 + timedelta(hours=1)
    run(
        database_url,
        workspace,
        [group("acme", {"name": "Acme", "plan": "free"}, user="g-u2")],
        [group("acme", {"plan": "pro", "seats": 12}, user="g-u2", at=later)],
        [group("globex", {"name": "Globex"}, user="g-u2", at=later)],
    )
    pid = profile_of(database_url, ws, "user_id", "g-u2")
    assert groups_of(database_url, ws, pid) == {
        "acme": ({"name": "Acme", "plan": "pro", "seats": 12}, later),
        "globex": ({"name": "Globex"}, later),
    }
    meta = q(
        database_url,
        "SELECT trait_meta FROM profile_groups WHERE workspace_id=%s AND profile_id=%s "
        "AND group_id='acme'",
        ws,
        pid,
    )[0][0]
    assert datetime.fromisoformat(meta["name"]["at"]) == T0
    assert datetime.fromisoformat(meta["plan"]["at"]) == later


def test_an_older_call_arriving_late_does_not_overwrite_newer_values(database_url, workspace):
    ws = workspace.workspace.id
    later = T0 + timedelta(hours=1)
    run(
        database_url,
        workspace,
        [group("acme", {"plan": "pro"}, user="g-u3", at=later)],
        [group("acme", {"plan": "free", "seats": 3}, user="g-u3", at=T0)],
    )
    pid = profile_of(database_url, ws, "user_id", "g-u3")
    # The late call adds what was unknown, and changes nothing newer.
    assert groups_of(database_url, ws, pid) == {"acme": ({"plan": "pro", "seats": 3}, later)}


def test_calls_in_one_batch_fold_by_event_time(database_url, workspace):
    ws = workspace.workspace.id
    later = T0 + timedelta(minutes=5)
    run(
        database_url,
        workspace,
        [
            group("acme", {"plan": "enterprise"}, user="g-u4", at=later),
            group("acme", {"plan": "free", "region": "eu"}, user="g-u4", at=T0),
        ],
    )
    pid = profile_of(database_url, ws, "user_id", "g-u4")
    assert groups_of(database_url, ws, pid) == {
        "acme": ({"plan": "enterprise", "region": "eu"}, later)
    }


def test_groups_follow_an_identity_merge(database_url, workspace):
    """Shared groups combine per trait by event time; the others move; none stay behind."""
    ws = workspace.workspace.id
    t1, t2, t3 = (T0 + timedelta(hours=h) for h in (1, 2, 3))
    run(
        database_url,
        workspace,
        [
            identify(user="g-m1", email="groups-m1@example.com"),
            group("shared", {"plan": "pro", "owner": "ann"}, user="g-m1", at=t2),
            group("only-user", {"x": 1}, user="g-m1", at=t1),
        ],
        [
            group("shared", {"plan": "free", "owner": "bob", "seats": 4}, anon="g-dev1", at=t1),
            group("shared", {"owner": "cid"}, anon="g-dev1", at=t3),
            group("only-device", {"y": 2}, anon="g-dev1", at=t1),
        ],
    )
    user_profile = profile_of(database_url, ws, "user_id", "g-m1")
    device_profile = profile_of(database_url, ws, "anonymous_id", "g-dev1")
    assert user_profile != device_profile
    # The device's identify joins it to the user through the email.
    run(
        database_url,
        workspace,
        [identify(anon="g-dev1", email="groups-m1@example.com", at=T0 + timedelta(hours=4))],
    )
    survivor = profile_of(database_url, ws, "anonymous_id", "g-dev1")
    assert survivor == profile_of(database_url, ws, "user_id", "g-m1")
    source = device_profile if survivor == user_profile else user_profile
    assert groups_of(database_url, ws, survivor) == {
        # plan: t2 beats t1; owner: t3 beats t2; seats only on one side.
        "shared": ({"plan": "pro", "owner": "cid", "seats": 4}, t3),
        "only-user": ({"x": 1}, t1),
        "only-device": ({"y": 2}, t1),
    }
    assert groups_of(database_url, ws, source) == {}
    assert len(all_group_rows(database_url, ws)) == 3


def test_several_profiles_merging_into_one_at_once_fold_their_groups(database_url, workspace):
    ws = workspace.workspace.id
    t1, t2, t3 = (T0 + timedelta(hours=h) for h in (1, 2, 3))
    run(
        database_url,
        workspace,
        [group("acme", {"plan": "a", "tier": 1}, user="g-many", at=t1)],
        [
            identify(anon="g-many-2", email="g-many@example.com"),
            group("acme", {"plan": "b"}, anon="g-many-2", at=t3),
        ],
        [group("acme", {"plan": "c", "tier": 3, "zone": "z"}, anon="g-many-3", at=t2)],
    )
    owners = {
        profile_of(database_url, ws, "user_id", "g-many"),
        profile_of(database_url, ws, "anonymous_id", "g-many-2"),
        profile_of(database_url, ws, "anonymous_id", "g-many-3"),
    }
    assert len(owners) == 3
    # One message names all three: two of them merge into the third in one write.
    run(
        database_url,
        workspace,
        [identify(user="g-many", anon="g-many-3", email="g-many@example.com", at=T0)],
    )
    survivor = profile_of(database_url, ws, "user_id", "g-many")
    assert profile_of(database_url, ws, "anonymous_id", "g-many-2") == survivor
    assert profile_of(database_url, ws, "anonymous_id", "g-many-3") == survivor
    assert groups_of(database_url, ws, survivor) == {
        "acme": ({"plan": "b", "tier": 3, "zone": "z"}, t3)
    }
    assert all_group_rows(database_url, ws) == [(survivor, "acme")]


def test_a_restricted_profile_keeps_its_groups_as_they_were(database_url, workspace):
    ws = workspace.workspace.id
    run(database_url, workspace, [group("acme", {"plan": "free"}, user="g-r1")])
    pid = profile_of(database_url, ws, "user_id", "g-r1")
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE profiles SET restricted_at = now() WHERE workspace_id=%s AND id=%s", (ws, pid)
        )
    later = T0 + timedelta(hours=1)
    run(
        database_url,
        workspace,
        [
            group("acme", {"plan": "pro"}, user="g-r1", at=later),
            group("globex", {"name": "Globex"}, user="g-r1", at=later),
        ],
    )
    assert groups_of(database_url, ws, pid) == {"acme": ({"plan": "free"}, T0)}


def test_deleting_a_workspace_deletes_its_groups(database_url):
    created = new_workspace(database_url, "groups-gone")
    ws = created.workspace.id
    run(database_url, created, [group("acme", {"plan": "pro"}, user="g-w1")])
    assert len(all_group_rows(database_url, ws)) == 1
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM workspaces WHERE id=%s", (ws,))
    assert all_group_rows(database_url, ws) == []


def test_a_group_row_naming_no_workspace_is_refused(database_url):
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(
            "INSERT INTO profile_groups (workspace_id, profile_id, group_id, updated_at) "
            "VALUES (%s, gen_random_uuid(), 'acme', now())",
            (uuid.uuid4(),),
        )


def test_a_group_row_keeps_its_workspace(database_url, workspace, other_workspace):
    ws = workspace.workspace.id
    run(database_url, workspace, [group("acme", {}, user="g-fixed")])
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(
            "UPDATE profile_groups SET workspace_id = %s WHERE workspace_id = %s",
            (other_workspace.workspace.id, ws),
        )


def test_the_runtime_role_sees_only_its_workspace_groups(database_url, workspace, other_workspace):
    ws = workspace.workspace.id
    run(database_url, workspace, [group("acme", {"plan": "pro"}, user="g-rls")])
    with psycopg.connect(with_role(database_url, APP_ROLE)) as conn:
        counts = []
        for seen_from in (ws, other_workspace.workspace.id):
            conn.execute("SELECT set_config('cdp.workspace_id', %s, false)", (str(seen_from),))
            counts.append(
                conn.execute(
                    "SELECT count(*) FROM profile_groups WHERE workspace_id = %s", (ws,)
                ).fetchone()[0]
            )
    assert counts[0] >= 1
    assert counts[1] == 0
