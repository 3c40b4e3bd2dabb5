"""Identity resolution, decided in memory for a whole batch (no I/O).

The caller loads who owns each identifier and what each involved profile
holds, takes the locks, then asks the resolver, message by message in event
order, which profile each message belongs to. The resolver answers with a
plan: profiles to create, identifiers to attach, merges and conflicts, all
written back in a few set-based statements.

Rules, per identifier kind: how many values one profile may hold
(`max_values`, None for any number) and a priority (lower is stronger). A
merge that would leave a profile with more values of a kind than allowed
never happens; the collision is recorded as a conflict instead. With the
default rules two different user ids therefore never merge.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from uuid import UUID

from cdp.model import ANONYMOUS_ID, EMAIL, PHONE, USER_ID, Identifier
from domain.ids import new_id

CUSTOM_PRIORITY = 50


@dataclass(frozen=True)
class KindRule:
    max_values: int | None
    priority: int


DEFAULT_RULES: Mapping[str, KindRule] = {
    USER_ID: KindRule(max_values=1, priority=0),
    EMAIL: KindRule(max_values=None, priority=10),
    PHONE: KindRule(max_values=None, priority=20),
    ANONYMOUS_ID: KindRule(max_values=None, priority=100),
}


@dataclass(frozen=True)
class Rules:
    kinds: Mapping[str, KindRule] = field(default_factory=lambda: dict(DEFAULT_RULES))

    def rule(self, kind: str) -> KindRule:
        return self.kinds.get(kind) or KindRule(max_values=None, priority=CUSTOM_PRIORITY)

    def priority(self, identifier: Identifier) -> tuple[int, str, str]:
        return (self.rule(identifier.kind).priority, identifier.kind, identifier.value)


@dataclass(frozen=True)
class Merge:
    source: UUID
    target: UUID
    rule: str
    trigger: str


@dataclass(frozen=True)
class Conflict:
    identifier: Identifier
    held_by: UUID
    claimed_by: UUID
    rule: str
    trigger: str


@dataclass
class Plan:
    new_profiles: list[UUID] = field(default_factory=list)
    attached: list[tuple[Identifier, UUID]] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


class Resolver:
    def __init__(
        self,
        rules: Rules,
        owners: Mapping[Identifier, UUID],
        holdings: Mapping[UUID, Iterable[Identifier]],
        *,
        make_id: Callable[[], UUID] = new_id,
    ) -> None:
        self.rules = rules
        self.plan = Plan()
        self._owner: dict[Identifier, UUID] = dict(owners)
        self._holds: dict[UUID, set[Identifier]] = {p: set(ids) for p, ids in holdings.items()}
        self._merged_into: dict[UUID, UUID] = {}
        self._make_id = make_id

    def survivor(self, profile_id: UUID) -> UUID:
        """Where a profile ended up after this batch's merges."""
        if not self._merged_into:
            # Most batches merge nothing; a UUID hashes in Python, so skip the lookup.
            return profile_id
        while profile_id in self._merged_into:
            profile_id = self._merged_into[profile_id]
        return profile_id

    def holdings(self, profile_id: UUID) -> frozenset[Identifier]:
        return frozenset(self._holds.get(profile_id, ()))

    def _new_profile(self) -> UUID:
        profile_id = self._make_id()
        self.plan.new_profiles.append(profile_id)
        self._holds[profile_id] = set()
        return profile_id

    def _values(self, profile_id: UUID, kind: str) -> set[str]:
        return {i.value for i in self._holds.get(profile_id, ()) if i.kind == kind}

    def _fits(self, profile_id: UUID, identifier: Identifier) -> bool:
        limit = self.rules.rule(identifier.kind).max_values
        if limit is None:
            return True
        values = self._values(profile_id, identifier.kind) | {identifier.value}
        return len(values) <= limit

    def blocking_rule(self, a: UUID, b: UUID) -> str | None:
        """The rule a merge of `a` and `b` would break, if any."""
        return self._blocking_rule(a, b)

    def _blocking_rule(self, a: UUID, b: UUID) -> str | None:
        kinds = {i.kind for i in self._holds.get(a, ())} | {i.kind for i in self._holds.get(b, ())}
        for kind in sorted(kinds, key=lambda k: self.rules.rule(k).priority):
            limit = self.rules.rule(kind).max_values
            if limit is not None and len(self._values(a, kind) | self._values(b, kind)) > limit:
                return f"{kind}:max_values={limit}"
        return None

    def _rank(self, profile_id: UUID) -> tuple[int, UUID]:
        strongest = min(
            (self.rules.rule(i.kind).priority for i in self._holds.get(profile_id, ())),
            default=CUSTOM_PRIORITY * 10,
        )
        # Ids are time-ordered, so the smaller one is the older profile.
        return (strongest, profile_id)

    def _merge(self, a: UUID, b: UUID, rule: str, trigger: str) -> UUID:
        target, source = sorted((a, b), key=self._rank)
        for identifier in self._holds.pop(source, set()):
            self._owner[identifier] = target
            self._holds[target].add(identifier)
        self._merged_into[source] = target
        self.plan.merges.append(Merge(source, target, rule, trigger))
        return target

    def _attach(self, identifier: Identifier, profile_id: UUID) -> None:
        self._owner[identifier] = profile_id
        self._holds.setdefault(profile_id, set()).add(identifier)
        self.plan.attached.append((identifier, profile_id))

    def resolve(self, identifiers: Iterable[Identifier], trigger: str) -> UUID:
        """The profile a message with these identifiers belongs to; updates the plan."""
        ordered = sorted(set(identifiers), key=self.rules.priority)
        if not ordered:
            raise ValueError("a message needs at least one identifier")
        owned = [i for i in ordered if i in self._owner]
        target = self._join_owners(owned, trigger) or self._new_profile()
        return self._attach_new(ordered, owned, target, trigger)

    def _join_owners(self, owned: list[Identifier], trigger: str) -> UUID | None:
        """Merge the profiles that own the message's identifiers, as far as the rules allow."""
        target: UUID | None = None
        for identifier in owned:
            owner = self.survivor(self._owner[identifier])
            if target is None or owner == target:
                target = owner
                continue
            blocking = self._blocking_rule(target, owner)
            if blocking is None:
                target = self._merge(target, owner, rule="shared_identifier", trigger=trigger)
            else:
                self.plan.conflicts.append(Conflict(identifier, owner, target, blocking, trigger))
        return target

    def _attach_new(
        self, ordered: list[Identifier], owned: list[Identifier], target: UUID, trigger: str
    ) -> UUID:
        """Attach the message's unowned identifiers to `target`, as far as the rules allow."""
        for position, identifier in enumerate(ordered):
            if identifier in self._owner:
                continue
            if self._fits(target, identifier):
                self._attach(identifier, target)
                continue
            limit = self.rules.rule(identifier.kind).max_values
            rule = f"{identifier.kind}:max_values={limit}"
            if position == 0:
                # The message's strongest identifier belongs to somebody else than the
                # profile its weaker ones point at: it gets its own profile, and the
                # identifiers that linked the two are recorded as conflicts.
                refused = target
                target = self._new_profile()
                self._attach(identifier, target)
                for linked in owned:
                    if self.survivor(self._owner[linked]) == refused:
                        self.plan.conflicts.append(Conflict(linked, refused, target, rule, trigger))
            else:
                self.plan.conflicts.append(Conflict(identifier, target, target, rule, trigger))
        return target
