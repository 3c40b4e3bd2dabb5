"""The outbox: a job runs if and only if its transaction commits, exactly once."""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dramatiq
import psycopg
import pytest
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker

from domain.db import create_engine, session_factory
from domain.outbox import Job, OutboxRelay
from domain.uow import UnitOfWork
from tests.support.database import APP_ROLE
from tests.support.factories import outbox_job, seeding
from tests.support.proxy import database_proxy
from tests.support.worker import running_worker, wait_for

PROBE = "tests.support.probe_actors"


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def _write_jobs(database_url: str, jobs: list[Job], *, commit: bool) -> list[uuid.UUID]:
    engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
    try:
        async with UnitOfWork(session_factory(engine)) as uow:
            ids = [await uow.enqueue(job) for job in jobs]
            if commit:
                await uow.commit()
        return ids
    finally:
        await engine.dispose()


def _probe(path: Path, token: str) -> Job:
    return Job("record_probe", (str(path), token), queue_name="probe")


def _outbox_row(database_url: str, job_id: uuid.UUID) -> tuple | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT sent_at, attempts FROM outbox WHERE id = %s", (job_id,)
        ).fetchone()


class TestRelayInProcess:
    """The relay against Dramatiq's stub broker."""

    def test_rolled_back_jobs_never_reach_the_broker(self, database_url, tmp_path):
        broker = StubBroker()
        ids = asyncio.run(_write_jobs(database_url, [_probe(tmp_path / "x", "rb")], commit=False))
        assert _outbox_row(database_url, ids[0]) is None

        async def relay() -> int:
            engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
            try:
                return await OutboxRelay(session_factory(engine), broker).relay_pending()
            finally:
                await engine.dispose()

        asyncio.run(relay())
        # The relay may send other tests' pending jobs too: the queues hold encoded messages.
        relayed = [
            Message.decode(raw).message_id for q in broker.queues
            for raw in list(broker.queues[q].queue)
        ]  # fmt: skip
        assert str(ids[0]) not in relayed

    def test_broker_failure_keeps_unsent_rows_and_marks_sent_ones(self, database_url, tmp_path):
        token = uuid.uuid4().hex
        jobs = [_probe(tmp_path / "x", f"{token}-{i}") for i in range(3)]
        ids = asyncio.run(_write_jobs(database_url, jobs, commit=True))
        sent: list[str] = []

        class FlakyBroker(StubBroker):
            def enqueue(self, message, *, delay=None):
                if len(sent) == 1:
                    raise ConnectionError("broker went away")
                sent.append(message.message_id)
                return message

        async def relay() -> None:
            engine = create_engine(database_url, role=APP_ROLE, pool_size=1)
            try:
                with pytest.raises(ConnectionError):
                    await OutboxRelay(session_factory(engine), FlakyBroker()).relay_pending()
            finally:
                await engine.dispose()

        # Other tests' committed rows may be relayed first; ours must end up consistent.
        asyncio.run(relay())
        rows = {i: _outbox_row(database_url, i) for i in ids}
        for job_id, (sent_at, _attempts) in rows.items():
            if str(job_id) in sent:
                assert sent_at is not None
            else:
                assert sent_at is None
        failed = [r for r in rows.values() if r[1] == 1]
        assert len(failed) <= 1


def test_commit_runs_once_and_rollback_never_on_a_real_worker(database_url, tmp_path):
    path = tmp_path / "runs.txt"
    with running_worker(database_url):
        asyncio.run(_write_jobs(database_url, [_probe(path, "rolled-back")], commit=False))
        ids = asyncio.run(_write_jobs(database_url, [_probe(path, "committed")], commit=True))
        assert wait_for(lambda: "committed" in _lines(path), timeout=30)
        time.sleep(1.5)  # several relay intervals: a second delivery would show by now
    assert _lines(path) == ["committed"]
    sent_at, _ = _outbox_row(database_url, ids[0])
    assert sent_at is not None


def test_job_committed_while_broker_is_down_runs_once_it_is_back(database_url, tmp_path):
    path = tmp_path / "runs.txt"
    proxy, broker_url = database_proxy(database_url)
    proxy.start()
    try:
        with running_worker(database_url, broker_url=broker_url) as log:
            proxy.stop()
            ids = asyncio.run(
                _write_jobs(database_url, [_probe(path, "after-outage")], commit=True)
            )
            time.sleep(2)
            assert _lines(path) == []
            assert _outbox_row(database_url, ids[0])[0] is None
            proxy.start()
            assert wait_for(lambda: _lines(path) == ["after-outage"], timeout=120, interval=0.5), (
                "".join(log[-60:])
            )
            time.sleep(1.5)
        assert _lines(path) == ["after-outage"]
        assert _outbox_row(database_url, ids[0])[0] is not None
    finally:
        proxy.close()


@pytest.mark.parametrize(
    "env_name",
    [
        pytest.param("REDIS_URL", marks=pytest.mark.redis),
        pytest.param("AMQP_URL", marks=pytest.mark.rabbitmq),
    ],
)
def test_commit_runs_once_on_other_brokers(database_url, tmp_path, env_name):
    import os

    broker_url = os.environ.get(env_name)
    if not broker_url:
        pytest.skip(f"{env_name} is not set")
    path = tmp_path / "runs.txt"
    token = f"{env_name}-{uuid.uuid4().hex[:8]}"
    with running_worker(database_url, broker_url=broker_url):
        asyncio.run(_write_jobs(database_url, [_probe(path, "never")], commit=False))
        asyncio.run(_write_jobs(database_url, [_probe(path, token)], commit=True))
        assert wait_for(lambda: token in _lines(path), timeout=30)
        time.sleep(1.5)
    assert _lines(path) == [token]


def test_purge_outbox_actor_runs_on_a_real_worker(database_url):
    now = datetime.now(UTC)
    with seeding(database_url) as conn:
        old_id = outbox_job(conn, sent_at=now - timedelta(days=8))
        fresh_id = outbox_job(conn, sent_at=now - timedelta(days=1))
    with running_worker(database_url):
        asyncio.run(
            _write_jobs(database_url, [Job("purge_outbox", queue_name="maintenance")], commit=True)
        )
        assert wait_for(lambda: _outbox_row(database_url, old_id) is None, timeout=30)
    assert _outbox_row(database_url, fresh_id) is not None


def test_exhausted_job_is_kept_in_failed_jobs(database_url):
    token = uuid.uuid4().hex
    with running_worker(database_url):
        ids = asyncio.run(
            _write_jobs(
                database_url, [Job("always_fails", (token,), queue_name="probe")], commit=True
            )
        )

        def recorded() -> tuple | None:
            with psycopg.connect(database_url) as conn:
                return conn.execute(
                    "SELECT actor_name, args, retries, error FROM failed_jobs WHERE message_id = %s",
                    (ids[0],),
                ).fetchone()

        assert wait_for(lambda: recorded() is not None, timeout=30)
    actor_name, args, retries, error = recorded()
    assert actor_name == "always_fails"
    assert args == [token]
    assert retries >= 1
    assert "probe failure" in error


def test_actor_names_in_jobs_are_declared():
    import domain.maintenance  # noqa: F401
    import tests.support.probe_actors  # noqa: F401

    declared = set(dramatiq.get_broker().get_declared_actors())
    assert {"purge_outbox", "record_probe", "always_fails"} <= declared
