"""Who uses an object: a port for the contexts above the one that owns it.

A segment (cdp) must not be deleted while a campaign (delivery) sends to it,
yet cdp may not import delivery. Delivery registers here what uses what;
the owner asks before it deletes.
"""

from collections.abc import Awaitable, Callable
from uuid import UUID

from domain.uow import UnitOfWork

# What uses an object, each as a person would name it (`campaign "Spring"`).
Users = Callable[[UnitOfWork, UUID], Awaitable[list[str]]]


_users: dict[str, list[Users]] = {}


def register(kind: str, users: Users) -> None:
    found = _users.setdefault(kind, [])
    if users not in found:
        found.append(users)


async def users_of(uow: UnitOfWork, kind: str, object_id: UUID) -> list[str]:
    """Everything registered as using this object, in the order registered."""
    named: list[str] = []
    for users in _users.get(kind, []):
        named.extend(await users(uow, object_id))
    return named
