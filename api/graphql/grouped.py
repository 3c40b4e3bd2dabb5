"""DataLoader batches whose keys carry a field argument shared by a group of them."""

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=Hashable)
V = TypeVar("V")


async def load_by_group(
    keys: Sequence[K],
    group: Callable[[K], G],
    load: Callable[[G, list[K]], Awaitable[Sequence[V]]],
) -> list[V]:
    """One `load` per group of keys (one per distinct argument), answered in key order.

    A page asks the same field with the same arguments of every node, so this is
    one call in practice; different arguments in one document cost one each.
    """
    answers: dict[K, V] = {}
    for name in dict.fromkeys(group(k) for k in keys):
        members = [k for k in keys if group(k) == name]
        answers.update(zip(members, await load(name, members), strict=True))
    return [answers[k] for k in keys]
