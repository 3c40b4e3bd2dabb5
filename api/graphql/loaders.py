"""The request's DataLoaders, one factory each.

A factory returns the loader that the request's context keeps under its
name, made on first use: every field that asks for the same thing in one
document shares it, so a page of profiles costs one statement per field, not
one per profile (rule 3; the query-count tests guard it). A loader made with
a unit of work keeps the first one it was given, which is the request's own.
"""

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from strawberry.dataloader import DataLoader
from strawberry.types import Info

from cdp import queries
from cdp.model import Identifier
from cdp.segments import explain as explaining
from cdp.segments import repository as segment_store
from consent import gate, ledger
from consent.model import ConsentRecord, Contactability
from delivery.journeys import repository as journey_store
from delivery.journeys.repository import EnrollmentRow
from delivery.tracking import stats as tracking_stats
from delivery.tracking.stats import Counts
from domain.personal_data import Subject
from domain.uow import UnitOfWork

D = TypeVar("D")
K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=Hashable)
MAX_JOURNEYS = 100  # a profile's enrollments listed, the latest first
V = TypeVar("V")

# A subject's profile ids, and the moment asked for (None for now).
ConsentKey = tuple[tuple[UUID, ...], datetime | None]
# A subject, then the channel and purpose asked for.
ContactKey = tuple[Subject, str, str]


async def _by_group(
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


def nodes(
    info: Info,
    name: str,
    uow: UnitOfWork,
    fetch: Callable[[UnitOfWork, list[UUID]], Awaitable[Mapping[UUID, D]]],
) -> DataLoader[UUID, D | None]:
    """The objects behind one node type's ids; None for an id not found."""

    async def load(keys: list[UUID]) -> list[D | None]:
        found = await fetch(uow, keys)
        return [found.get(key) for key in keys]

    loader: DataLoader[UUID, D | None] = info.context.loader(name, load)
    return loader


def _per_profile(
    info: Info, name: str, read: Callable[[Sequence[UUID]], Awaitable[Mapping[UUID, list[V]]]]
) -> DataLoader[UUID, list[V]]:
    """A loader of each profile's list of `read` rows, empty for a profile with none."""

    async def load(keys: Sequence[UUID]) -> list[list[V]]:
        found = await read(keys)
        return [found.get(k, []) for k in keys]

    loader: DataLoader[UUID, list[V]] = info.context.loader(name, load)
    return loader


def identities(info: Info, uow: UnitOfWork) -> DataLoader[UUID, list[Identifier]]:
    """Each profile's identifiers."""
    return _per_profile(info, "identities", lambda keys: queries.identities_of(uow, keys))


def events(info: Info, page: queries.EventPage) -> DataLoader[UUID, list[queries.EventRow]]:
    """Each profile's `page` of events (a profile lookup may prime it)."""

    async def read(keys: Sequence[UUID]) -> dict[UUID, list[queries.EventRow]]:
        return await queries.recent_events(await info.context.uow(), keys, page)

    return _per_profile(info, f"events:{page!r}", read)


def groups(info: Info, uow: UnitOfWork) -> DataLoader[UUID, list[queries.GroupRow]]:
    """The groups (Segment `group` calls) each profile belongs to."""
    return _per_profile(info, "groups", lambda keys: queries.groups_of(uow, keys))


def merges(info: Info, uow: UnitOfWork) -> DataLoader[UUID, list[queries.MergeRow]]:
    """The merges into each profile, oldest first."""
    return _per_profile(info, "merges", lambda keys: queries.merges_of(uow, keys))


def conflicts(info: Info, uow: UnitOfWork) -> DataLoader[UUID, list[queries.ConflictRow]]:
    """The identity conflicts that kept each profile apart from another."""
    return _per_profile(info, "conflicts", lambda keys: queries.conflicts_of(uow, keys))


def merged_ids(info: Info, uow: UnitOfWork) -> DataLoader[UUID, list[UUID]]:
    """Each surviving profile's id with the ids of every profile merged into it."""

    async def load(keys: Sequence[UUID]) -> list[list[UUID]]:
        found = await queries.merged_ids(uow, keys)
        return [found.get(k, [k]) for k in keys]

    loader: DataLoader[UUID, list[UUID]] = info.context.loader("merged_ids", load)
    return loader


def consents(info: Info, uow: UnitOfWork) -> DataLoader[ConsentKey, list[ConsentRecord]]:
    """Each subject's current consent records as of a moment: one read per moment asked."""

    async def load(keys: Sequence[ConsentKey]) -> list[list[ConsentRecord]]:
        return await _by_group(
            keys,
            lambda key: key[1],
            lambda when, group: ledger.current_for_many(uow, [k[0] for k in group], at=when),
        )

    loader: DataLoader[ConsentKey, list[ConsentRecord]] = info.context.loader("consents", load)
    return loader


def contactability(info: Info, uow: UnitOfWork) -> DataLoader[ContactKey, Contactability]:
    """The contact gate's answer for each subject: one check per channel and purpose asked."""

    async def load(keys: Sequence[ContactKey]) -> list[Contactability]:
        return await _by_group(
            keys,
            lambda key: (key[1], key[2]),
            lambda wanted, group: gate.contactability(
                uow, [k[0] for k in group], channel=wanted[0], purpose=wanted[1]
            ),
        )

    loader: DataLoader[ContactKey, Contactability] = info.context.loader("contactable", load)
    return loader


def segment_sizes(info: Info, uow: UnitOfWork) -> DataLoader[UUID, int]:
    """Each segment's current number of members."""

    async def load(keys: Sequence[UUID]) -> list[int]:
        found = await segment_store.size(uow, keys)
        return [found[k] for k in keys]

    loader: DataLoader[UUID, int] = info.context.loader("segment_sizes", load)
    return loader


def segment_explanations(
    info: Info, uow: UnitOfWork
) -> DataLoader[tuple[UUID, UUID], explaining.Explanation]:
    """Why each (segment id, profile id) is or is not a member: each profile's facts read once."""

    async def load(
        keys: Sequence[tuple[UUID, UUID]],
    ) -> Sequence[explaining.Explanation | BaseException]:
        rows = await segment_store.get_many(uow, sorted({segment_id for segment_id, _ in keys}))
        asks = [(rows[segment_id], profile_id) for segment_id, profile_id in keys]
        return await explaining.explain_many(uow, info.context.state.keys, asks)

    loader: DataLoader[tuple[UUID, UUID], explaining.Explanation] = info.context.loader(
        "segment_explanations", load
    )
    return loader


def profile_segments(info: Info, uow: UnitOfWork) -> DataLoader[UUID, list[UUID]]:
    """The segments each profile is a member of now."""
    return _per_profile(info, "profile_segments", lambda keys: segment_store.segments_of(uow, keys))


def profile_journeys(info: Info, uow: UnitOfWork) -> DataLoader[UUID, list[EnrollmentRow]]:
    """Each profile's latest journey enrollments, its merged-away ids' included."""
    return _per_profile(info, "profile_journeys",
                        lambda keys: journey_store.latest_of(uow, keys, limit=MAX_JOURNEYS))  # fmt: skip


def segment_history(
    info: Info, uow: UnitOfWork, limit: int
) -> DataLoader[UUID, list[segment_store.HistoryRow]]:
    """Each profile's latest `limit` segment entries and exits, newest first."""
    return _per_profile(
        info,
        f"segment_history:{limit}",
        lambda keys: segment_store.history(uow, keys, limit=limit),
    )


MemberPage = tuple[UUID, UUID | None, int]


def segment_members(info: Info, uow: UnitOfWork) -> DataLoader[MemberPage, list[UUID]]:
    """A page of each segment's member ids: one statement for every segment a document lists."""

    async def load(keys: Sequence[MemberPage]) -> list[list[UUID]]:
        return await segment_store.member_pages(uow, list(keys))

    loader: DataLoader[MemberPage, list[UUID]] = info.context.loader("segment_members", load)
    return loader


def campaign_stats(info: Info, uow: UnitOfWork) -> DataLoader[UUID, dict[str, Counts]]:
    """Each campaign's message counts by variant ("" without one), from the counters: one read
    for a page of campaigns and for both `stats` and `variants`."""

    async def load(keys: Sequence[UUID]) -> list[dict[str, Counts]]:
        found = await tracking_stats.by_campaign_variant(uow, keys)
        return [found[k] for k in keys]

    loader: DataLoader[UUID, dict[str, Counts]] = info.context.loader("campaign_stats", load)
    return loader
