"""Fixtures: a migrated database on a real PostgreSQL, apps, workspaces."""

import asyncio
import os
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from domain import migrate, workspaces
from tests.support.database import APP_ROLE, SECRET, create_database, drop_database, server_url

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def pg_server() -> str:
    return server_url()


@pytest.fixture(scope="session")
def database_url(pg_server: str) -> Iterator[str]:
    url = create_database(pg_server)
    migrate.upgrade(url, APP_ROLE)
    yield url
    drop_database(pg_server, url)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "BROKER_URL", "ENV", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": SECRET,
        "app_db_role": APP_ROLE,
        "outbox_relay_interval": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
def client(settings: Settings, database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings, database_url=database_url)) as test_client:
        yield test_client


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def sql_counter(client: TestClient) -> Iterator[StatementCounter]:
    engine = client.app.state.cdp.engine  # type: ignore[attr-defined]
    counter = StatementCounter()
    event.listen(engine.sync_engine, "before_cursor_execute", counter)
    yield counter
    event.remove(engine.sync_engine, "before_cursor_execute", counter)


def new_workspace(database_url: str, name: str = "test") -> workspaces.CreatedWorkspace:
    return run(workspaces.create_standalone(database_url, role=APP_ROLE, name=name))


@pytest.fixture
def workspace(database_url: str) -> workspaces.CreatedWorkspace:
    return new_workspace(database_url, "alpha")


@pytest.fixture
def other_workspace(database_url: str) -> workspaces.CreatedWorkspace:
    return new_workspace(database_url, "beta")


def gql(
    client: TestClient,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def broker_env_urls() -> dict[str, str | None]:
    return {"redis": os.environ.get("REDIS_URL"), "amqp": os.environ.get("AMQP_URL")}
