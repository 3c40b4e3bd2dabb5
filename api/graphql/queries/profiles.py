"""The `profile` and `profiles` fields."""

from collections.abc import Sequence
from typing import Any

from strawberry import relay
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

from api.graphql import connection, loaders
from api.graphql.ids import local_id
from api.graphql.scalars import JSON
from api.graphql.types.event import event_page
from api.graphql.types.identity import IdentifierInput
from api.graphql.types.profile import ProfileNode
from cdp import identifiers, queries
from domain.credentials import PROFILES_READ
from domain.errors import NotFoundError, ValidationError
from domain.uow import Statement, UnitOfWork


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
        page = _asked_event_page(info)

        async def read(
            uow: UnitOfWork, before: Sequence[Statement]
        ) -> tuple[
            list[list[Any]], tuple[queries.ProfileRow | None, list[queries.EventRow] | None]
        ]:
            earlier, row, events = await queries.profile_by_identifier(
                uow, wanted, before=before, events=page
            )
            return earlier, (row, events)

        row, events = await info.context.read(PROFILES_READ, read)
        if row is None:
            return None
        if page is not None and events is not None:
            loaders.events(info, page).prime(row.id, events)
        return ProfileNode.from_row(row)
    await info.context.require(PROFILES_READ)
    if id is None or identifier is not None:
        raise ValidationError("give exactly one of id and identifier", field="id")
    try:
        key = local_id(id, "Profile")
    except NotFoundError:
        return None
    nodes = await ProfileNode.resolve_nodes(info=info, node_ids=[str(key)])
    return nodes[0]


def _asked_event_page(info: Info) -> queries.EventPage | None:
    """The page of events the document asks of the profile, when it asks for exactly one.

    Read in the same round trip as the profile, it saves the round trip that
    the events field would make once the profile is known.
    """
    asked = [
        selection.arguments
        for field in info.selected_fields
        for selection in field.selections
        if isinstance(selection, SelectedField) and selection.name == "events"
    ]
    if len(asked) != 1:
        return None
    arguments = asked[0]
    first = arguments.get("first")  # a literal comes as its text, a variable as a number
    try:
        return event_page(
            None if first is None else int(first), arguments.get("after"), arguments.get("name")
        )
    except ValidationError:
        return None  # the events field reports it


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
