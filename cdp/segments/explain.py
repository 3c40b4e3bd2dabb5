"""Why a profile is or is not in a segment: its facts loaded, the definition evaluated in Python.

The facts are what the compiled statement reads for the profile: traits and
computed traits, identifier kinds, the events the definition names, current
memberships, and the contact gate's answers. A merged-away id is explained
as its survivor. A restricted profile (GDPR Art. 18) is never a member.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cdp import queries
from cdp.segments import evaluate, repository
from cdp.segments import model as m
from cdp.segments.repository import SegmentRow
from cdp.segments.services import global_id, parse
from consent import gate
from consent.keys import Keys
from consent.model import Contactability
from domain.errors import NotFoundError
from domain.personal_data import Subject
from domain.uow import UnitOfWork

# The most events of one profile an explanation reads; they are the latest.
MAX_EVENTS = 10_000


@dataclass(frozen=True)
class Explanation:
    matched: bool
    is_member: bool
    tree: dict[str, Any]


async def load_facts(
    uow: UnitOfWork, keys: Keys, nodes: Sequence[m.Node], profile_id: UUID
) -> tuple[UUID, evaluate.ProfileFacts, bool] | None:
    """The survivor's id, its facts for each of `nodes`, and whether it is restricted; None if
    unknown."""
    row = (await queries.profiles_by_id(uow, [profile_id])).get(profile_id)
    if row is None:
        return None
    survivor = row.id
    ids = (await queries.merged_ids(uow, [survivor])).get(survivor, [survivor])
    held = (await queries.identities_of(uow, ids)).values()
    pairs = tuple(sorted({(i.kind, i.value) for group in held for i in group}))
    leaves = [n for node in nodes for n in m.walk(node)]
    names = sorted({n.name for n in leaves if isinstance(n, m.EventCondition)})
    events = await repository.profile_events(uow, survivor, names, limit=MAX_EVENTS)
    segments = (await repository.segments_of(uow, [survivor]))[survivor]
    subject = keys.hashed(Subject(uow.workspace_id, tuple(ids), pairs))
    answers: dict[tuple[str, str], Contactability] = {}
    for n in leaves:
        if isinstance(n, m.ContactableCondition) and (n.channel, n.purpose) not in answers:
            answers[n.channel, n.purpose] = await gate.is_contactable(
                uow, subject, channel=n.channel, purpose=n.purpose
            )
    facts = evaluate.ProfileFacts(
        traits=row.traits,
        computed=row.computed,
        identifier_kinds=frozenset(kind for kind, _ in pairs),
        events=tuple(evaluate.EventFact(e.name, e.timestamp, e.properties) for e in events),
        segments=frozenset(segments),
        contact=lambda channel, purpose: answers[channel, purpose],
    )
    return survivor, facts, await repository.is_restricted(uow, survivor)


async def explain(
    uow: UnitOfWork, keys: Keys, segment: SegmentRow, profile_id: UUID
) -> Explanation:
    [found] = await explain_many(uow, keys, [(segment, profile_id)])
    if isinstance(found, NotFoundError):
        raise found
    return found


async def explain_many(
    uow: UnitOfWork, keys: Keys, asks: Sequence[tuple[SegmentRow, UUID]]
) -> list[Explanation | NotFoundError]:
    """Each (segment, profile) explained, in order; each profile's facts loaded once for all
    of its segments."""
    parsed = {segment.id: parse(segment.definition).node for segment, _ in asks}
    by_profile: dict[UUID, list[SegmentRow]] = {}
    for segment, profile_id in asks:
        by_profile.setdefault(profile_id, []).append(segment)
    answers: dict[tuple[UUID, UUID], Explanation | NotFoundError] = {}
    now = uow.clock.now()
    for profile_id, segments in by_profile.items():
        loaded = await load_facts(uow, keys, [parsed[s.id] for s in segments], profile_id)
        for segment in segments:
            if loaded is None:
                answers[segment.id, profile_id] = NotFoundError(
                    "no profile with this id", field="profileId"
                )
                continue
            _survivor, facts, restricted = loaded
            matched, tree = evaluate.explain(parsed[segment.id], facts, now,
                                             segment_ref=global_id)  # fmt: skip
            if restricted:
                tree = {**tree, "restricted": True}
            answers[segment.id, profile_id] = Explanation(
                matched=matched and not restricted,
                is_member=segment.id in facts.segments,
                tree=tree,
            )
    return [answers[segment.id, profile_id] for segment, profile_id in asks]
