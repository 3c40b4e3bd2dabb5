"""Segment use cases: define, edit, delete, evaluate in full, preview.

A segment's members are always those of its last full evaluation, kept up to
date per profile since (cdp/segments/upkeep.py). Saving a definition writes a
job that evaluates it in full in the background; until that job ends, the
segment reports `computing` and keeps the members it had.
"""

import base64
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from cdp.segments import compiler, definition, repository
from cdp.segments import model as m
from cdp.segments.repository import MembershipChange, SegmentRow
from consent import audit
from consent.keys import Keys
from domain import references
from domain.errors import ConflictError, FieldError, InUseError, NotFoundError, ValidationError
from domain.ids import global_id_of, new_id
from domain.outbox import Job
from domain.uow import UnitOfWork

QUEUE = "segments"
RECOMPUTE_ACTOR = "recompute_segment"
CHANGED_ACTOR = "segment_membership_changed"
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2000
SEGMENT_TYPE = "Segment"
MAX_PREVIEW_SAMPLE = 100


def global_id(segment_id: UUID) -> str:
    """The segment's id as the API shows it (a Relay global id)."""
    return base64.b64encode(f"{SEGMENT_TYPE}:{segment_id}".encode()).decode()


def segment_id_of(value: str) -> UUID | None:
    """A segment id from its global id, or from the bare UUID."""
    return global_id_of(value, SEGMENT_TYPE)


@dataclass(frozen=True)
class SegmentInput:
    name: str
    description: str | None
    definition: Any


@dataclass(frozen=True)
class Parsed:
    node: m.Node
    canonical: dict[str, Any]


def parse(raw: Any) -> Parsed:
    """The definition's tree and its canonical JSON; raises DefinitionError when invalid."""
    node = definition.parse(raw, segment_id=segment_id_of)
    return Parsed(node, definition.to_json(node, segment_ref=global_id))


def _checked_text(data: SegmentInput) -> tuple[str, str | None]:
    name = data.name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"name must be 1 to {MAX_NAME_LENGTH} characters", field="name")
    description = (data.description or "").strip() or None
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise ValidationError(
            f"description must be at most {MAX_DESCRIPTION_LENGTH} characters",
            field="description",
        )
    return name, description


def _segment_paths(node: Any, path: str = "definition") -> list[tuple[str, str]]:
    """Where the canonical JSON names another segment: (JSON path, id) pairs."""
    if not isinstance(node, dict):
        return []
    if "segment" in node:
        return [(f"{path}.segment", str(node["segment"]))]
    found: list[tuple[str, str]] = []
    for key in ("all", "any"):
        for index, child in enumerate(node.get(key, [])):
            found.extend(_segment_paths(child, f"{path}.{key}[{index}]"))
    if "not" in node:
        found.extend(_segment_paths(node["not"], f"{path}.not"))
    return found


async def _check_references(uow: UnitOfWork, segment_id: UUID, parsed: Parsed) -> set[UUID]:
    """The segments the definition names; refused when one is missing or names this one back."""
    referenced = m.referenced_segments(parsed.node)
    if not referenced:
        return referenced
    existing = await repository.get_many(uow, sorted(referenced))
    graph = await repository.reference_graph(uow)
    graph[segment_id] = referenced
    errors = []
    for path, ref in _segment_paths(parsed.canonical):
        target = segment_id_of(ref)
        if target is None or target not in existing:
            errors.append(FieldError(None, path, f"there is no segment {ref}"))
        elif _reaches(graph, target, segment_id):
            name = existing[target].name
            errors.append(
                FieldError(
                    None,
                    path,
                    f'segment "{name}" depends on this segment, so this would be a cycle',
                )
            )
    if errors:
        raise definition.DefinitionError(errors)
    return referenced


def _reaches(graph: dict[UUID, set[UUID]], start: UUID, goal: UUID) -> bool:
    seen: set[UUID] = set()
    stack = [start]
    while stack:
        current = stack.pop()
        if current == goal:
            return True
        if current not in seen:
            seen.add(current)
            stack.extend(graph.get(current, ()))
    return False


async def _schedule(uow: UnitOfWork, row: SegmentRow) -> None:
    await uow.enqueue(
        Job(
            RECOMPUTE_ACTOR,
            (str(uow.workspace_id), str(row.id), row.version),
            queue_name=QUEUE,
        )
    )


async def create(uow: UnitOfWork, actor: audit.Actor, data: SegmentInput) -> SegmentRow:
    name, description = _checked_text(data)
    parsed = parse(data.definition)
    await repository.lock_reference_graph(uow)
    await repository.lock_out_changes(uow)
    if await repository.name_taken(uow, name, other_than=None):
        raise ConflictError(f'a segment named "{name}" exists', field="name")
    segment_id = new_id()
    referenced = await _check_references(uow, segment_id, parsed)
    now = uow.clock.now()
    row = SegmentRow(
        id=segment_id,
        name=name,
        description=description,
        definition=parsed.canonical,
        version=1,
        computed_version=0,
        computed_at=None,
        uses_time=m.uses_time(parsed.node),
        evaluated_at=None,
        created_at=now,
        updated_at=now,
    )
    await repository.insert_segment(uow, row)
    await repository.replace_references(uow, segment_id, referenced)
    await audit.record(
        uow, actor, "segment.created", object_type="segment", object_id=segment_id,
        details={"name": name, "definition": parsed.canonical},
    )  # fmt: skip
    await _schedule(uow, row)
    return row


async def update(
    uow: UnitOfWork, actor: audit.Actor, segment_id: UUID, data: SegmentInput
) -> SegmentRow:
    name, description = _checked_text(data)
    parsed = parse(data.definition)
    await repository.lock_reference_graph(uow)
    await repository.lock_out_changes(uow)
    current = await repository.get(uow, segment_id, for_update=True)
    if current is None:
        raise NotFoundError("no such segment", field="id")
    if await repository.name_taken(uow, name, other_than=segment_id):
        raise ConflictError(f'a segment named "{name}" exists', field="name")
    referenced = await _check_references(uow, segment_id, parsed)
    row = await repository.update_definition(
        uow,
        segment_id,
        name=name,
        description=description,
        definition=parsed.canonical,
        uses_time=m.uses_time(parsed.node),
        at=uow.clock.now(),
    )
    await repository.replace_references(uow, segment_id, referenced)
    await audit.record(
        uow, actor, "segment.updated", object_type="segment", object_id=segment_id,
        details={"name": name, "definition": parsed.canonical, "version": row.version},
    )  # fmt: skip
    if parsed.canonical != current.definition:
        await _schedule(uow, row)
    return row


async def delete(uow: UnitOfWork, actor: audit.Actor, segment_id: UUID) -> None:
    # The references first, then the segment's own lock, in the order every
    # writer takes them, and only then its row.
    await repository.lock_reference_graph(uow)
    await repository.lock_segments(uow, [segment_id])
    current = await repository.get(uow, segment_id, for_update=True)
    if current is None:
        raise NotFoundError("no such segment", field="id")
    users = await repository.referenced_by(uow, segment_id)
    if users:
        names = sorted(row.name for row in (await repository.get_many(uow, users)).values())
        listed = ", ".join(f'"{n}"' for n in names)
        raise InUseError(f"segment is used by the segments {listed}; remove it from them first")
    elsewhere = await references.users_of(uow, "segment", segment_id)
    if elsewhere:
        raise InUseError(f"segment is used by {', '.join(elsewhere)}")
    await repository.delete_segment(uow, segment_id)
    await audit.record(
        uow, actor, "segment.deleted", object_type="segment", object_id=segment_id,
        details={"name": current.name},
    )  # fmt: skip


def members_query(
    uow: UnitOfWork, keys: Keys, node: m.Node, *, now: datetime | None = None
) -> compiler.CompiledQuery:
    """The full evaluation's selection of the segment's members."""
    return compiler.members_query(
        node,
        workspace_id=uow.workspace_id,
        now=now or uow.clock.now(),
        digest_pads=keys.digest_pads(uow.workspace_id),
    )


async def recompute(
    uow: UnitOfWork, keys: Keys, segment_id: UUID, *, version: int | None = None
) -> MembershipChange | None:
    """Evaluate the segment in full and write the difference; None if it is gone or newer.

    `version` is the definition version the job was written for: a job for an
    older version has been overtaken by the job of the newer one.
    """
    await repository.lock_segments(uow, [segment_id])
    row = await repository.get(uow, segment_id)
    if row is None or (version is not None and row.version != version):
        return None
    node = parse(row.definition).node
    # The members are those as of `now`: the sweep moves them on from there.
    now = uow.clock.now()
    change = await apply(uow, keys, row.id, node, profile_ids=None, now=now)
    await repository.mark_computed(uow, row.id, row.version, now)
    return change


@dataclass
class ChangeSet:
    """The entries and exits of one transaction's evaluations, announced as one outbox job."""

    id: UUID = field(default_factory=new_id)
    moved: bool = False

    async def announce(self, uow: UnitOfWork) -> None:
        if self.moved:
            job = Job(CHANGED_ACTOR, (str(uow.workspace_id), str(self.id)), queue_name=QUEUE)
            await uow.enqueue(job)


async def apply(
    uow: UnitOfWork,
    keys: Keys,
    segment_id: UUID,
    node: m.Node,
    *,
    profile_ids: Sequence[UUID] | None,
    now: datetime | None = None,
    changes: ChangeSet | None = None,
) -> MembershipChange:
    """Write the segment's new members (among `profile_ids`, if given) as of `now`.

    The change is recorded under `changes`, whose caller announces it once
    for all its evaluations; without one, it is announced here. The caller
    holds the segment's lock (`repository.lock_segments`).
    """
    if profile_ids is not None:
        found = await apply_to_profiles(
            uow, keys, [Evaluation(segment_id, node, profile_ids)], now=now, changes=changes
        )
        return found.get(segment_id, MembershipChange(0, 0))
    own = changes is None
    changes = changes or ChangeSet()
    at = now or uow.clock.now()
    change = await repository.apply_members(
        uow, segment_id, members_query(uow, keys, node, now=at), change_id=changes.id, at=at
    )
    changes.moved = changes.moved or bool(change.entered or change.exited)
    if own:
        await changes.announce(uow)
    return change


@dataclass(frozen=True)
class Evaluation:
    """A segment to evaluate again for some profiles."""

    segment_id: UUID
    node: m.Node
    profile_ids: Sequence[UUID]


def _levels(work: Sequence[Evaluation]) -> list[list[Evaluation]]:
    """The evaluations in rounds: a segment after every segment of `work` that it names."""
    by_id = {e.segment_id: e for e in work}
    level: dict[UUID, int] = {}

    def depth(segment_id: UUID) -> int:
        if segment_id not in level:
            named = [r for r in m.referenced_segments(by_id[segment_id].node) if r in by_id]
            level[segment_id] = 1 + max((depth(r) for r in named), default=-1)
        return level[segment_id]

    rounds: list[list[Evaluation]] = []
    for evaluation in work:
        n = depth(evaluation.segment_id)
        rounds.extend([] for _ in range(n + 1 - len(rounds)))
        rounds[n].append(evaluation)
    return rounds


async def apply_to_profiles(
    uow: UnitOfWork,
    keys: Keys,
    work: Sequence[Evaluation],
    *,
    now: datetime | None = None,
    changes: ChangeSet | None = None,
) -> dict[UUID, MembershipChange]:
    """Evaluate each segment again for its profiles, in a statement per round of up to 62 segments.

    A segment that names another is evaluated in a later round, so it reads
    that one's new members. The caller holds the segments' locks. Returns
    the changes of the segments that moved.
    """
    own = changes is None
    changes = changes or ChangeSet()
    at = now or uow.clock.now()
    found: dict[UUID, MembershipChange] = {}
    for level in _levels([e for e in work if e.profile_ids]):
        for start in range(0, len(level), compiler.MAX_VERDICTS):
            chunk = level[start : start + compiler.MAX_VERDICTS]
            masks: dict[UUID, int] = {}
            for n, evaluation in enumerate(chunk):
                for pid in evaluation.profile_ids:
                    masks[pid] = masks.get(pid, 0) | (1 << n)
            verdicts = compiler.verdicts_query(
                [e.node for e in chunk], list(masks.values()),
                workspace_id=uow.workspace_id, now=at, profile_ids=list(masks),
                digest_pads=keys.digest_pads(uow.workspace_id),
            )  # fmt: skip
            found.update(
                await repository.apply_verdicts(
                    uow, [e.segment_id for e in chunk], verdicts, change_id=changes.id, at=at
                )
            )
    changes.moved = changes.moved or any(c.entered or c.exited for c in found.values())
    if own:
        await changes.announce(uow)
    return found


async def events_removed(uow: UnitOfWork, *, older_than: timedelta) -> int:
    """Queue a full evaluation of each segment that counts events older than `older_than`.

    Deleting old events (a retention period) can only change the segments
    that look that far back; how many were queued.
    """
    queued = 0
    for row in await repository.all_segments(uow):
        node = parse(row.definition).node
        if any(
            isinstance(n, m.EventCondition) and (n.window is None or n.window > older_than)
            for n in m.walk(node)
        ):
            await _schedule(uow, row)
            queued += 1
    return queued


# What a context above (journeys) does with each change's entries and exits,
# in the transaction that follows the change.
Follower = Callable[[UnitOfWork, UUID], Awaitable[None]]
_followers: list[Follower] = []


def on_membership_change(follower: Follower) -> None:
    if follower not in _followers:
        _followers.append(follower)


async def tell_followers(uow: UnitOfWork, change_id: UUID) -> None:
    for follower in _followers:
        await follower(uow, change_id)


async def follow_change(uow: UnitOfWork, keys: Keys, change_id: UUID) -> int:
    """Re-evaluate, for the profiles a change moved, the segments that name a changed one.

    Returns how many segments were re-evaluated. Their own changes are
    announced in turn, so a chain of references settles step by step.
    """
    graph = await repository.reference_graph(uow)
    if not graph:
        return 0  # no segment names another: nothing to follow
    moved: dict[UUID, set[UUID]] = {}
    for entry in await repository.change_rows(uow, change_id):
        moved.setdefault(entry.segment_id, set()).add(entry.profile_id)
    wanted: dict[UUID, set[UUID]] = {}
    for dependent, named in graph.items():
        for segment_id in named & moved.keys():
            wanted.setdefault(dependent, set()).update(moved[segment_id])
    if not wanted:
        return 0
    await repository.lock_segments(uow, sorted(wanted))
    rows = await repository.get_many(uow, sorted(wanted))
    changes = ChangeSet()
    work = [
        Evaluation(row.id, parse(row.definition).node, sorted(wanted[row.id]))
        for row in sorted(rows.values(), key=lambda r: r.id)
    ]
    await apply_to_profiles(uow, keys, work, changes=changes)
    await changes.announce(uow)
    return len(rows)


async def preview(uow: UnitOfWork, keys: Keys, raw: Any, *, sample: int) -> tuple[int, list[UUID]]:
    """How many profiles an unsaved definition selects now, and a sample of them; writes nothing."""
    if not 0 <= sample <= MAX_PREVIEW_SAMPLE:
        raise ValidationError(f"sample must be 0 to {MAX_PREVIEW_SAMPLE}", field="sample")
    parsed = parse(raw)
    referenced = m.referenced_segments(parsed.node)
    if referenced:
        existing = await repository.get_many(uow, sorted(referenced))
        missing = [
            FieldError(None, path, f"there is no segment {ref}")
            for path, ref in _segment_paths(parsed.canonical)
            if segment_id_of(ref) not in existing
        ]
        if missing:
            raise definition.DefinitionError(missing)
    return await repository.preview(uow, members_query(uow, keys, parsed.node), sample)
