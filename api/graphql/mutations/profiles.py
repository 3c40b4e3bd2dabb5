"""upsertProfiles and mergeProfiles."""

from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql.ids import local_id
from api.graphql.types.input_error import InputError
from api.graphql.types.payloads import MergeProfilesPayload, UpsertProfilesPayload
from api.graphql.types.profile import ProfileNode, ProfileUpsertInput
from cdp import profiles as profile_service
from cdp import queries
from consent import audit
from domain.credentials import PROFILES_WRITE
from domain.errors import DomainError


async def upsert_profiles(
    info: Info,
    input: Annotated[  # noqa: A002 - the contract's name
        list[profile_service.UpsertItem],
        strawberry.argument(graphql_type=list[ProfileUpsertInput]),
    ],
    idempotency_key: str | None = None,
) -> UpsertProfilesPayload:
    """Create or update up to 1,000 profiles by identifier.

    Valid items are applied; each bad one is reported with its index. The same
    idempotencyKey with the same payload returns the first result without
    applying it again; with another payload it is an error.
    """
    uow = await info.context.require(PROFILES_WRITE)
    try:
        result = await profile_service.upsert_profiles(uow, input, idempotency_key=idempotency_key)
    except DomainError as error:
        return UpsertProfilesPayload(profiles=[], errors=[InputError.from_domain(error)])
    if result.replayed:
        rows = await queries.profiles_by_id(uow, result.profile_ids)
    else:
        await uow.commit()
        rows = result.profiles
    return UpsertProfilesPayload(
        profiles=[ProfileNode.from_row(rows[p]) for p in result.profile_ids if p in rows],
        errors=[InputError.of(e) for e in result.errors],
    )


async def merge_profiles(
    info: Info, target_id: relay.GlobalID, source_id: relay.GlobalID
) -> MergeProfilesPayload:
    """Merge sourceId into targetId (for example, an accepted duplicate candidate)."""
    uow = await info.context.require(PROFILES_WRITE)
    principal = await info.context.principal()
    try:
        target = local_id(target_id, "Profile", field="targetId")
        source = local_id(source_id, "Profile", field="sourceId")
        survivor = await profile_service.merge_profiles(
            uow,
            target,
            source,
            trigger=f"mergeProfiles:{principal.kind}:{principal.credential_id}",
            actor=audit.Actor.of(principal),
        )
    except DomainError as error:
        return MergeProfilesPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    rows = await queries.profiles_by_id(uow, [survivor])
    return MergeProfilesPayload(profile=ProfileNode.from_row(rows[survivor]))
