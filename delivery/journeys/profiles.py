"""What the engine asks about an enrolled profile: its time zone, and a branch's rule now."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from cdp import queries
from cdp.segments import evaluate
from cdp.segments import explain as facts
from cdp.segments.model import Node
from consent.keys import Keys
from delivery.sending import policy as policy_rules
from domain.uow import UnitOfWork


@dataclass
class ProfileContext:
    """An enrolled profile as the engine sees it (`engine.Context`)."""

    uow: UnitOfWork
    keys: Keys
    profile_id: UUID
    traits: dict[str, object]
    default_zone: str
    now: datetime
    seen: dict[Node, bool] = field(default_factory=dict)

    def zone(self) -> ZoneInfo:
        return policy_rules.zone(self.traits.get("timezone"), self.default_zone)

    async def holds(self, condition: Node) -> bool:
        """The rule for this profile now; a profile gone (erased) matches nothing."""
        if condition not in self.seen:
            loaded = await facts.load_facts(self.uow, self.keys, [condition], self.profile_id)
            if loaded is None:
                self.seen[condition] = False
            else:
                _survivor, known, restricted = loaded
                self.seen[condition] = not restricted and evaluate.evaluate(
                    condition, known, self.now
                )
        return self.seen[condition]


async def contexts(
    uow: UnitOfWork, keys: Keys, profile_ids: Sequence[UUID], *, with_traits: bool
) -> dict[UUID, ProfileContext]:
    """A context per profile; traits are read only when a plan asks for a local time."""
    rules = await policy_rules.get(uow)
    now = uow.clock.now()
    traits: dict[UUID, dict[str, object]] = {}
    if with_traits:
        found = await queries.profiles_by_id(uow, sorted(set(profile_ids)))
        traits = {pid: row.traits for pid, row in found.items()}
    return {
        pid: ProfileContext(uow, keys, pid, traits.get(pid, {}), rules.default_timezone, now)
        for pid in profile_ids
    }
