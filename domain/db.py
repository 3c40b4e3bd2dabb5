"""Engine, metadata and database URLs.

Two connections exist: the owner (migrations, `cdp migrate`) and the runtime
role, which owns nothing and so is bound by forced row-level security. The
runtime role is set with the libpq startup option `-c role=...`; unlike a
`SET ROLE` statement, `RESET ROLE` cannot step back out of it.
"""

import json
import time
from typing import Any
from urllib.parse import quote

import orjson
import psycopg
from sqlalchemy import MetaData, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

WORKSPACE_SETTING = "cdp.workspace_id"


def sqlalchemy_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise ValueError(f"unsupported database driver {parsed.drivername!r}; use postgresql://")
    return parsed


def libpq_url(url: str) -> str:
    """The URL in plain libpq form, for psycopg and the broker."""
    return sqlalchemy_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# A connection attempt that hangs (a half-open TCP connection, a partition) must
# not stall a pool for good: give up and let the pool try again.
CONNECT_TIMEOUT_SECONDS = 10


def role_options(role: str | None) -> dict[str, Any]:
    if not role:
        return {}
    if not role.replace("_", "").isalnum():
        raise ValueError(f"invalid database role name {role!r}")
    return {"options": f"-c role={role}"}


def with_role(url: str, role: str | None) -> str:
    """A libpq URL whose sessions run as `role`."""
    base = libpq_url(url)
    if not role:
        return base
    # libpq does not read "+" as a space, so the option is quoted by hand.
    option = quote(role_options(role)["options"], safe="")
    return f"{base}{'&' if '?' in base else '?'}options={option}"


# A pooled connection idle for longer than this is pinged before it is handed
# out, so a database restart during a quiet spell costs no request. A busy pool
# skips the ping: it costs a round trip, and a connection that dies under load
# fails its statement and SQLAlchemy then recycles the whole pool.
IDLE_PING_SECONDS = 2.0
_IDLE_SINCE = "cdp_idle_since"


def json_loads(data: str | bytes) -> Any:
    """orjson's speed for stored JSON, and the standard library for what orjson refuses.

    jsonb may hold numbers beyond 64 bits, which orjson does not read.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    idle_since = record.info.pop(_IDLE_SINCE, None)
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
        return
    # In autocommit, so that the ping leaves no transaction open behind it.
    dbapi_connection.autocommit = True
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        raise DisconnectionError(str(exc)) from exc
    finally:
        cursor.close()
        if not dbapi_connection.closed:
            dbapi_connection.autocommit = False


def create_engine(
    url: str, *, role: str | None, pool_size: int = 10, echo: bool = False
) -> AsyncEngine:
    engine = create_async_engine(
        sqlalchemy_url(url),
        connect_args={**role_options(role), "connect_timeout": CONNECT_TIMEOUT_SECONDS},
        pool_size=pool_size,
        max_overflow=pool_size,
        json_deserializer=json_loads,
        echo=echo,
    )
    event.listen(engine.sync_engine.pool, "checkin", _checked_in)
    event.listen(engine.sync_engine.pool, "checkout", _checked_out)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
