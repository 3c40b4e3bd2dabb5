"""Reads that follow a merged-away profile to its survivor stay index probes under row-level security.

Joined on coalesce(merged_into, id), each of them read every profile of the
workspace: a cost that grows with the workspace, invisible in small tests.
"""

import asyncio
import uuid
from typing import Any

from cdp import queries
from cdp.model import Identifier
from cdp.subjects import ProfileDirectory
from domain.db import create_engine, session_factory
from domain.uow import Statement, UnitOfWork
from tests.support.database import APP_ROLE
from tests.support.factories import event, identity, profile, profiles, seeding

PROFILES = 3000

# This transaction's own scans so far, visible before they are reported.
_SCANS = "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'profiles'"


def _seed(database_url: str, workspace_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    with seeding(database_url) as conn:
        profiles(conn, workspace_id, PROFILES)
        survivor = profile(conn, workspace_id)
        merged = profile(
            conn, workspace_id, merged_into=survivor, identifiers=[("email", "old@example.com")]
        )
        conn.execute("ANALYZE profiles")
        conn.execute("ANALYZE identities")
    return survivor, merged


async def _read_scanning(
    database_url: str, workspace_id: uuid.UUID, read: Any
) -> tuple[Any, int, int]:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine), workspace_id=workspace_id) as uow:
            [[before]] = await uow.pipeline(Statement(_SCANS))
            found = await read(uow)
            [[after]] = await uow.pipeline(Statement(_SCANS))
            return found, after.seq_scan - before.seq_scan, after.idx_scan - before.idx_scan
    finally:
        await engine.dispose()


def _check(database_url: str, workspace_id: uuid.UUID, read: Any) -> Any:
    found, seq_scans, index_scans = asyncio.run(_read_scanning(database_url, workspace_id, read))
    assert seq_scans == 0, "a read of the survivor scanned the profiles table"
    assert index_scans > 0
    return found


def test_a_lookup_by_identifier_probes_the_index(database_url, workspace):
    ws = workspace.workspace.id
    survivor, _ = _seed(database_url, ws)
    _, row, events = _check(
        database_url,
        ws,
        lambda uow: queries.profile_by_identifier(uow, Identifier("email", "old@example.com")),
    )
    assert row is not None
    assert row.id == survivor
    assert events is None  # not asked


def test_a_lookup_by_identifier_with_its_events_probes_the_index(database_url, workspace):
    ws = workspace.workspace.id
    survivor, merged = _seed(database_url, ws)
    with seeding(database_url) as conn:
        event(conn, ws, survivor, name="Kept")
        event(conn, ws, merged, name="Stale")
    page = queries.EventPage(limit=5)
    _, row, events = _check(
        database_url,
        ws,
        lambda uow: queries.profile_by_identifier(
            uow, Identifier("email", "old@example.com"), events=page
        ),
    )
    assert row is not None
    assert row.id == survivor
    # The events of the survivor, found through an identifier of the merged-away profile.
    assert events is not None
    assert [e.name for e in events] == ["Kept"]


def test_a_lookup_by_merged_id_probes_the_index(database_url, workspace):
    ws = workspace.workspace.id
    survivor, merged = _seed(database_url, ws)
    found = _check(database_url, ws, lambda uow: queries.profiles_by_id(uow, [merged, survivor]))
    assert {asked: row.id for asked, row in found.items()} == {merged: survivor, survivor: survivor}


def test_a_data_subject_from_a_merged_id_probes_the_index(database_url, workspace):
    ws = workspace.workspace.id
    survivor, merged = _seed(database_url, ws)
    subject = _check(database_url, ws, lambda uow: ProfileDirectory().of_profile(uow, merged))
    assert subject is not None
    assert subject.profile_ids == (survivor, merged)


def test_the_current_email_is_the_survivors_first_in_code_point_order(database_url, workspace):
    ws = workspace.workspace.id
    survivor, merged = _seed(database_url, ws)
    with seeding(database_url) as conn:
        # "-" sorts before "b" by code point, after it in most locales' collations.
        identity(conn, ws, survivor, value="ab@example.com")
        identity(conn, ws, merged, value="a-c@example.com")
        no_email = profile(conn, ws, identifiers=[("phone", "+4930123456")])
    gone = uuid.uuid4()
    found = _check(
        database_url,
        ws,
        lambda uow: queries.current_emails(uow, [merged, survivor, no_email, gone, merged]),
    )
    assert found == {merged: "a-c@example.com", survivor: "a-c@example.com"}


def test_locking_the_survivors_of_server_events_probes_the_index(database_url, workspace):
    ws = workspace.workspace.id
    survivor, merged = _seed(database_url, ws)

    async def lock(uow: UnitOfWork) -> Any:
        [rows] = await uow.pipeline(queries.lock_survivors(ws, [merged, survivor, uuid.uuid4()]))
        return rows

    rows = _check(database_url, ws, lock)
    assert {(r.asked, r.id, r.moved) for r in rows} == {
        (merged, survivor, False),
        (survivor, survivor, False),
    }
