"""Use cases on profiles: bulk upsert (idempotent) and manual merge."""

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson

from cdp import identifiers as ids
from cdp import profile_store, queries
from cdp.model import Identifier
from cdp.profile_store import Operation
from cdp.resolution import Resolver
from consent import audit
from domain import changes
from domain.errors import ConflictError, FieldError, NotFoundError, ValidationError
from domain.uow import UnitOfWork

MAX_UPSERT = 1000
MAX_TRAITS_BYTES = 32 * 1024


# Not frozen: bulk paths make one per item, and a frozen one is slower to build (bench/README.md).
@dataclass(slots=True)
class UpsertItem:
    identifiers: Sequence[tuple[str, str]]
    traits: Any = None


@dataclass
class UpsertResult:
    profile_ids: list[UUID] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)
    replayed: bool = False
    # Each profile as this call wrote it; empty for a replay, whose profiles may
    # have changed (or merged) since the first call.
    profiles: dict[UUID, queries.ProfileRow] = field(default_factory=dict)


def _validate(
    index: int, item: UpsertItem
) -> tuple[tuple[Identifier, ...], dict[str, Any]] | list[FieldError]:
    errors: list[FieldError] = []
    found: list[Identifier] = []
    if not item.identifiers:
        errors.append(FieldError(index, "identifiers", "at least one identifier is required"))
    for j, (kind, value) in enumerate(item.identifiers):
        try:
            found.append(ids.normalize(kind, value))
        except ids.IdentifierError as exc:
            errors.append(FieldError(index, f"identifiers[{j}]", str(exc)))
    traits = item.traits if item.traits is not None else {}
    if not isinstance(traits, dict):
        errors.append(FieldError(index, "traits", "traits must be a JSON object"))
    elif len(orjson.dumps(traits)) > MAX_TRAITS_BYTES:
        errors.append(FieldError(index, "traits", "traits must be at most 32 KB"))
    return errors or (tuple(found), traits)


def _request_hash(items: Sequence[UpsertItem]) -> bytes:
    canonical = [
        {"identifiers": [list(i) for i in it.identifiers], "traits": it.traits} for it in items
    ]
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).digest()


def _stored(result: UpsertResult) -> str:
    return orjson.dumps(
        {
            "profile_ids": [str(p) for p in result.profile_ids],
            "errors": [dataclasses.asdict(e) for e in result.errors],
        }
    ).decode()


def _restored(response: dict[str, Any]) -> UpsertResult:
    return UpsertResult(
        profile_ids=[UUID(p) for p in response["profile_ids"]],
        errors=[FieldError(**e) for e in response["errors"]],
        replayed=True,
    )


async def _claim_key(uow: UnitOfWork, key: str, digest: bytes) -> UpsertResult | None:
    """Claim an idempotency key, or return the first call's result if it was used."""
    if not key.strip() or len(key) > 255:  # noqa: PLR2004
        raise ValidationError("idempotencyKey must be 1 to 255 characters", field="idempotencyKey")
    if await queries.claim_idempotency_key(uow, key, digest):
        return None
    used = await queries.idempotency_key(uow, key)
    if used.operation != "upsertProfiles" or used.request_hash != digest:
        raise ConflictError(
            "this idempotencyKey was used with a different payload", field="idempotencyKey"
        )
    return _restored(used.response)


async def upsert_profiles(
    uow: UnitOfWork,
    items: Sequence[UpsertItem],
    *,
    idempotency_key: str | None = None,
    trait_source: str = "api",
) -> UpsertResult:
    """Create or update profiles by identifier. Valid items apply; bad ones are reported."""
    if len(items) > MAX_UPSERT:
        raise ValidationError(f"at most {MAX_UPSERT} profiles per call", field="input")
    if idempotency_key is not None:
        previous = await _claim_key(uow, idempotency_key, _request_hash(items))
        if previous is not None:
            return previous
    result = UpsertResult()
    operations: list[Operation] = []
    now = uow.clock.now()
    for index, item in enumerate(items):
        checked = _validate(index, item)
        if isinstance(checked, list):
            result.errors.extend(checked)
            continue
        found, traits = checked
        operations.append(
            Operation(
                identifiers=found,
                trigger=f"upsert:{idempotency_key or '-'}:{index}",
                at=now,
                traits=traits or None,
                trait_source=trait_source,
            )
        )
    outcome = await profile_store.apply(uow, operations)
    result.profile_ids = outcome.profile_ids
    result.profiles = outcome.profiles
    if idempotency_key is not None:
        await queries.store_idempotent_response(uow, idempotency_key, _stored(result))
    return result


async def merge_profiles(
    uow: UnitOfWork,
    target_id: UUID,
    source_id: UUID,
    *,
    trigger: str,
    actor: audit.Actor = profile_store.IDENTITY_RESOLUTION,
) -> UUID:
    """Merge `source` into `target` on a person's word; the identity rules still hold."""
    if target_id == source_id:
        raise ValidationError("targetId and sourceId are the same profile", field="sourceId")
    found = await queries.profiles_by_id(uow, [target_id, source_id])
    if target_id not in found:
        raise NotFoundError("no profile with this id", field="targetId")
    if source_id not in found:
        raise NotFoundError("no profile with this id", field="sourceId")
    target, source = found[target_id].id, found[source_id].id
    if target == source:
        raise ConflictError("these profiles are already merged", field="sourceId")
    held = await queries.identities_of(uow, [target, source])
    await profile_store.lock_identifiers(uow, {i for group in held.values() for i in group})
    states, holdings = await profile_store.load_profiles(uow, sorted([target, source]))
    if target not in states or source not in states:
        raise ConflictError("the profiles changed while merging; try again", field="sourceId")
    blocking = Resolver(await profile_store.merge_rules(uow), {}, holdings).blocking_rule(
        target, source
    )
    if blocking is not None:
        raise ConflictError(f"these profiles cannot merge: {blocking}", field="sourceId")
    states[target].absorb(states[source])
    await profile_store.merge_rows(
        uow, sources=[source], targets=[target], rules=["manual"], triggers=[trigger], actor=actor
    )
    await profile_store.save_states(uow, states, [target])
    changes.touched(uow, [target, source], changes.MERGE)
    return target
