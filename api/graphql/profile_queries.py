"""Query fields over profiles and identity conflicts."""

from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

from api.graphql import connection
from api.graphql.ids import local_id
from api.graphql.scalars import JSON
from api.graphql.types.profile import IdentityConflictNode, ProfileNode, events_loader
from cdp import identifiers, queries
from domain.credentials import PROFILES_READ
from domain.errors import NotFoundError, ValidationError


@strawberry.input
class IdentifierInput:
    kind: str
    value: str


def _first_events_page(info: Info) -> tuple[int, str | None] | None:
    """(page size, name) when the query asks this profile for one first page of events.

    The events then travel in the same round trip as the profile. Anything
    else (fragments, several pages, a cursor, a bad size) is left to the
    `events` field itself.
    """
    pages = [
        field
        for field in info.selected_fields[0].selections
        if isinstance(field, SelectedField) and field.name == "events"
    ]
    if len(pages) != 1 or pages[0].arguments.get("after") is not None:
        return None
    arguments = pages[0].arguments
    # A literal argument arrives as its source text, a variable as its value.
    first, name = arguments.get("first"), arguments.get("name")
    try:
        size = connection.page_size(None if first is None else int(first))
    except (ValueError, ValidationError):
        return None
    return size, None if name is None else str(name)


async def profile(
    info: Info,
    id: relay.GlobalID | None = None,  # noqa: A002 - the contract's name
    identifier: IdentifierInput | None = None,
) -> ProfileNode | None:
    """One profile by id or by identifier. A merged-away id resolves to the surviving profile."""
    uow = await info.context.require(PROFILES_READ)
    if (id is None) == (identifier is None):
        raise ValidationError("give exactly one of id and identifier", field="id")
    if id is not None:
        try:
            key = local_id(id, "Profile")
        except NotFoundError:
            return None
    else:
        assert identifier is not None  # noqa: S101 - checked above
        try:
            wanted = identifiers.normalize(identifier.kind, identifier.value)
        except identifiers.IdentifierError as exc:
            raise ValidationError(str(exc), field="identifier") from exc
        page = _first_events_page(info)
        if page is None:
            row = await queries.profile_by_identifier(uow, wanted)
        else:
            limit, name = page
            row, events = await queries.profile_and_events_by_identifier(
                uow, wanted, limit=limit + 1, name=name
            )
            if row is not None:
                loader = await events_loader(info, limit=limit, name=name, after=None)
                loader.prime(row.id, events)
        return None if row is None else ProfileNode.from_row(row)
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
