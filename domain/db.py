"""Engine, metadata and database URLs.

Two connections exist: the owner (migrations, `cdp migrate`) and the runtime
role, which owns nothing and so is bound by forced row-level security. The
runtime role is set with the libpq startup option `-c role=...`; unlike a
`SET ROLE` statement, `RESET ROLE` cannot step back out of it.
"""

import json
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Timeouts:
    """Server-side limits on every wait of a session, in seconds (0 turns one off).

    `statement`: a statement that runs longer is cancelled; `lock`: a wait for
    a lock (row, table or advisory) that lasts longer fails; `idle_in_transaction`:
    a transaction left open and idle that long is ended with its session, so
    that a client that stopped talking cannot keep its locks.
    """

    statement: float = 60.0
    lock: float = 15.0
    idle_in_transaction: float = 60.0

    def options(self) -> str:
        limits = {
            "statement_timeout": self.statement,
            "lock_timeout": self.lock,
            "idle_in_transaction_session_timeout": self.idle_in_transaction,
        }
        return " ".join(f"-c {name}={round(seconds * 1000)}" for name, seconds in limits.items())


def role_options(role: str | None, timeouts: Timeouts | None = None) -> dict[str, Any]:
    options = [] if timeouts is None else [timeouts.options()]
    if role:
        if not role.replace("_", "").isalnum():
            raise ValueError(f"invalid database role name {role!r}")
        options.append(f"-c role={role}")
    return {"options": " ".join(options)} if options else {}


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
    url: str,
    *,
    role: str | None,
    pool_size: int = 10,
    echo: bool = False,
    timeouts: Timeouts | None = None,
) -> AsyncEngine:
    """A pooled engine whose sessions run as `role`, with `timeouts` (the defaults when None)."""
    engine = create_async_engine(
        sqlalchemy_url(url),
        connect_args={
            **role_options(role, timeouts or Timeouts()),
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        },
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
