"""Keeping memberships exact: changed profiles re-evaluated after commit, and the time sweep.

1. A change to a profile (`domain.changes.touched`, or the profile store's
   batch write) queues the profile in `segment_pending` with what changed,
   in the change's own transaction, and queues the workspace's upkeep job
   unless one is queued already.
2. The job (`run` here, in a worker) claims the queued profiles in batches
   and re-evaluates, for those profiles only, the segments whose rules read
   what changed. A batch is one transaction: its claim and its memberships
   commit together, or neither does and the job is retried.
3. Time moves memberships too ("within 30 days"). The sweep (`sweep`), run
   by the worker every minute, re-evaluates each such segment for the
   profiles whose values crossed a window's edge since the segment was last
   evaluated (`compiler.crossing_query`).
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from uuid import UUID

import orjson

from cdp.segments import compiler, evaluate, repository, services
from cdp.segments import model as m
from cdp.segments.repository import SegmentRow
from consent.keys import Keys
from consent.model import Contactability, decide
from domain import changes
from domain.ids import new_id
from domain.uow import Statement, UnitOfWork

UPKEEP_ACTOR = "segment_upkeep"
# A batch's cost is mostly per statement (a statement per segment), so larger
# batches drain a backlog faster; larger still would hold the segments' locks
# for longer (bench/README.md, "Segments").
CLAIM_BATCH = 5000
# A sweep longer after the last evaluation than this evaluates in full: the
# band of crossing values would be most of the data anyway.
MAX_SWEEP_GAP = timedelta(days=1)


def _holds_for_an_empty_profile(node: m.Node) -> bool:
    """Whether a profile with nothing (no traits, events, identifiers or consent) matches."""

    def contact(channel: str, purpose: str) -> Contactability:
        return decide(channel=channel, purpose=purpose, records=(), suppressions=())

    empty = evaluate.ProfileFacts({}, {}, frozenset(), (), frozenset(), contact)
    # No event and no date is in or out of a window, so the moment does not matter.
    return evaluate.evaluate(node, empty, datetime.now(UTC))


def watched(node: m.Node) -> frozenset[str]:
    """The reasons (`domain.changes`) that can change this definition's verdict for a profile.

    A new profile was a member of nothing: only the changes that made it, or
    a rule that an empty profile already matches, can put it in a segment.
    """
    found = {changes.MERGE, changes.PROFILE}
    if _holds_for_an_empty_profile(node):
        found.add(changes.NEW)
    for leaf in m.walk(node):
        if isinstance(leaf, m.TraitCondition):
            found.add(changes.TRAITS)
        elif isinstance(leaf, m.ComputedCondition):
            # Computed traits move with events (first and last seen with any).
            found.add(changes.TRAITS)
            found.add(changes.EVENT_PREFIX)
        elif isinstance(leaf, m.EventCondition):
            found.add(changes.event(leaf.name))
        elif isinstance(leaf, m.ContactableCondition):
            found.update((changes.CONSENT, changes.IDENTITY))
        elif isinstance(leaf, m.IdentifierCondition):
            found.add(changes.IDENTITY)
    return frozenset(found)


def _reads(watch: frozenset[str], reasons: frozenset[str]) -> bool:
    if watch & reasons:
        return True
    # Any event moves computed traits.
    return changes.EVENT_PREFIX in watch and any(
        r.startswith(changes.EVENT_PREFIX) for r in reasons
    )


class PendingListener:
    """Turns `domain.changes` notices into `segment_pending` rows and the upkeep job."""

    def statements(
        self, workspace_id: UUID, touched: Mapping[UUID, frozenset[str]]
    ) -> list[Statement]:
        rows = orjson.dumps(
            [{"pid": str(pid), "reasons": sorted(reasons)} for pid, reasons in touched.items()]
        ).decode()
        queued = repository.queue_changes(
            workspace_id,
            rows,
            len(touched),
            job_id=new_id(),
            actor=UPKEEP_ACTOR,
            queue=services.QUEUE,
        )
        # The lock first, in a statement of its own: the check then sees a segment whose
        # creation it waited for (`repository.change_lock`).
        return [repository.change_lock(workspace_id), queued]


changes.register(PendingListener())


def _in_dependency_order(rows: list[SegmentRow]) -> list[tuple[SegmentRow, m.Node]]:
    """Segments with those they reference first, so a reference reads fresh memberships."""
    parsed = {row.id: (row, services.parse(row.definition).node) for row in rows}
    ordered: list[tuple[SegmentRow, m.Node]] = []
    done: set[UUID] = set()

    def visit(segment_id: UUID) -> None:
        if segment_id in done or segment_id not in parsed:
            return
        done.add(segment_id)
        row, node = parsed[segment_id]
        for referenced in sorted(m.referenced_segments(node)):
            visit(referenced)
        ordered.append((row, node))

    for segment_id in sorted(parsed):
        visit(segment_id)
    return ordered


def _plan(
    rows: list[SegmentRow], touched: Mapping[UUID, frozenset[str]]
) -> list[services.Evaluation]:
    by_reasons: dict[frozenset[str], list[UUID]] = {}
    for pid, why in touched.items():
        by_reasons.setdefault(why, []).append(pid)
    plan = []
    for row, node in _in_dependency_order(rows):
        watch = watched(node)
        profile_ids = [
            pid for why, pids in by_reasons.items() if _reads(watch, why) for pid in pids
        ]
        if profile_ids:
            plan.append(services.Evaluation(row.id, node, profile_ids))
    return plan


async def refresh(uow: UnitOfWork, keys: Keys, touched: Mapping[UUID, frozenset[str]]) -> int:
    """Re-evaluate, for the touched profiles, each segment that reads what changed; how many.

    The segments are read again once locked: an edit or a deletion may have
    committed while the locks were awaited. A segment whose new definition is
    not yet computed is left to its full evaluation, which has not started
    (it would hold the lock) and so will see these changes.
    """
    wanted = _plan(await repository.all_segments(uow), touched)
    if not wanted:
        return 0
    await repository.lock_segments(uow, [e.segment_id for e in wanted])
    current = await repository.get_many(uow, [e.segment_id for e in wanted])
    ready = [r for r in current.values() if r.computed_version == r.version]
    plan = _plan(ready, touched)
    changes = services.ChangeSet()
    await services.apply_to_profiles(uow, keys, plan, changes=changes)
    await changes.announce(uow)
    return len(plan)


async def sweep_segment(uow: UnitOfWork, keys: Keys, row: SegmentRow) -> None:
    """Bring a time-window segment to now: only the profiles that crossed an edge, if possible."""
    await repository.lock_segments(uow, [row.id])
    found = await repository.get(uow, row.id)
    if found is None or found.computed_version < found.version:
        return  # deleted, or its full evaluation is still to come
    row = found
    now = uow.clock.now()
    node = services.parse(row.definition).node
    since = row.evaluated_at
    query = None
    if since is not None and timedelta(0) <= now - since <= MAX_SWEEP_GAP:
        query = compiler.crossing_query(node, workspace_id=uow.workspace_id, since=since, now=now)
    if query is None:
        await services.apply(uow, keys, row.id, node, profile_ids=None, now=now)
    else:
        candidates = await repository.profile_ids(uow, query)
        if candidates:
            await services.apply(uow, keys, row.id, node, profile_ids=candidates, now=now)
    await repository.mark_evaluated(uow, row.id, now)
