"""Query fields over profiles and identity conflicts."""

from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.ids import local_id
from api.graphql.scalars import JSON
from api.graphql.types.profile import IdentityConflictNode, ProfileNode
from cdp import identifiers, queries
from domain.credentials import PROFILES_READ
from domain.errors import NotFoundError, ValidationError


@strawberry.input
class IdentifierInput:
    kind: str
    value: str


async def profile(
    info: Info,
    id: relay.GlobalID | None = None,  # noqa: A002 - the contract's name
    identifier: IdentifierInput | None = None,
) -> ProfileNode | None:
    """One profile by id or by identifier. A merged-away id resolves to the surviving profile."""
    if id is None and identifier is not None:
        try:
            wanted = identifiers.normalize(identifier.kind, identifier.value)
        except identifiers.IdentifierError as exc:
            await info.context.require(PROFILES_READ)  # a caller without it learns only that
            raise ValidationError(str(exc), field="identifier") from exc
        row = await info.context.read(
            PROFILES_READ,
            lambda uow, before: queries.profile_by_identifier(uow, wanted, before=before),
        )
        return None if row is None else ProfileNode.from_row(row)
    await info.context.require(PROFILES_READ)
    if id is None or identifier is not None:
        raise ValidationError("give exactly one of id and identifier", field="id")
    try:
        key = local_id(id, "Profile")
    except NotFoundError:
        return None
    nodes = await ProfileNode.resolve_nodes(info=info, node_ids=[str(key)])
    return nodes[0]


async def profiles(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    trait: JSON | None = None,
    identifier_kind: str | None = None,
) -> relay.Connection[ProfileNode]:
    """Live (not merged-away) profiles, optionally those whose traits contain `trait`."""
    uow = await info.context.require(PROFILES_READ)
    limit = connection.page_size(first)
    cursor = connection.decode_cursor(after)
    if trait is not None and not isinstance(trait, dict):
        raise ValidationError('trait must be a JSON object, e.g. {"plan": "pro"}', field="trait")
    filter_: dict[str, Any] | None = trait
    rows = await queries.list_profiles(
        uow, after=cursor, limit=limit + 1, trait=filter_, identifier_kind=identifier_kind
    )
    return connection.build(
        rows, limit, key=lambda r: r.id, to_node=ProfileNode.from_row, after=cursor
    )


async def identity_conflicts(
    info: Info, first: int | None = None, after: str | None = None
) -> relay.Connection[IdentityConflictNode]:
    """Identifier collisions the merge rules refused, for a person to review."""
    uow = await info.context.require(PROFILES_READ)
    limit = connection.page_size(first)
    cursor = connection.decode_cursor(after)
    rows = await queries.list_conflicts(uow, after=cursor, limit=limit + 1)
    return connection.build(
        rows, limit, key=lambda r: r.id, to_node=IdentityConflictNode.from_row, after=cursor
    )
