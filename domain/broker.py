"""Broker setup.

The default broker is dramatiq-postgres in the application database, so one
database runs everything; `redis://` and `amqp://` URLs choose Redis or
RabbitMQ instead. Actor modules may be imported before the real broker is
known: they bind to a placeholder, and `install` moves every declared actor
onto the real broker.
"""

from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO

from domain.db import CONNECT_TIMEOUT_SECONDS, with_role


class BrokerConfigError(ValueError):
    pass


def broker_kind(broker_url: str | None) -> str:
    if not broker_url or broker_url.startswith(("postgres://", "postgresql://", "postgresql+")):
        return "postgres"
    if broker_url.startswith(("redis://", "rediss://")):
        return "redis"
    if broker_url.startswith(("amqp://", "amqps://")):
        return "rabbitmq"
    raise BrokerConfigError(
        "BROKER_URL must start with postgresql://, redis:// or amqp:// (or be unset)"
    )


def make_broker(broker_url: str | None, *, database_url: str, role: str | None) -> dramatiq.Broker:
    kind = broker_kind(broker_url)
    broker: dramatiq.Broker
    if kind == "postgres":
        from dramatiq_postgres import PostgresBroker  # noqa: PLC0415 - optional per deployment

        url = with_role(broker_url or database_url, role)
        if "connect_timeout=" not in url:
            url += f"{'&' if '?' in url else '?'}connect_timeout={CONNECT_TIMEOUT_SECONDS}"
        broker = PostgresBroker(url=url, results=False)
    elif kind == "redis":
        from dramatiq.brokers.redis import RedisBroker  # noqa: PLC0415

        broker = RedisBroker(url=broker_url)  # type: ignore[no-untyped-call]
    else:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker  # noqa: PLC0415

        broker = RabbitmqBroker(url=broker_url)
    broker.add_middleware(AsyncIO())
    return broker


def install(broker: dramatiq.Broker) -> dramatiq.Broker:
    """Make `broker` the global broker, moving actors declared on the previous one."""
    previous = dramatiq.broker.global_broker
    if previous is not None and previous is not broker:
        for name in previous.get_declared_actors():
            actor = previous.get_actor(name)
            actor.broker = broker
            broker.declare_actor(actor)
    dramatiq.set_broker(broker)
    return broker


def check(broker: dramatiq.Broker) -> None:
    """Raise if the broker does not answer."""
    client: Any
    if hasattr(broker, "pool"):
        with broker.pool.connection(timeout=3) as conn:
            conn.execute("SELECT 1")
    elif hasattr(broker, "client"):
        client = broker.client
        client.ping()
    elif hasattr(broker, "connection"):
        connection = broker.connection
        if not connection.is_open:
            raise ConnectionError("broker connection is closed")


if dramatiq.broker.global_broker is None:
    # A placeholder so actor modules import cleanly; `install` replaces it.
    _placeholder = StubBroker()
    _placeholder.add_middleware(AsyncIO())
    dramatiq.set_broker(_placeholder)
