"""The `journey`, `journeys`, `simulateJourney` and `journeyDefinitionSchema` fields."""

from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.ids import local_id
from api.graphql.scalars import JSON
from api.graphql.types.journey import JourneyNode
from delivery.journeys import definition, simulation
from delivery.journeys import repository as journey_store
from delivery.templates import recipients
from domain.credentials import MESSAGES_READ
from domain.errors import NotFoundError


async def journey(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - the contract's name
) -> JourneyNode | None:
    await info.context.require(MESSAGES_READ)
    try:
        key = local_id(id, "Journey")
    except NotFoundError:
        return None
    [node] = await JourneyNode.resolve_nodes(info=info, node_ids=[str(key)])
    return node


async def journeys(
    info: Info, first: int | None = None, after: str | None = None
) -> relay.Connection[JourneyNode]:
    """The workspace's journeys, oldest first."""
    uow = await info.context.require(MESSAGES_READ)
    limit = connection.page_size(first)
    cursor = connection.decode_cursor(after)
    rows = await journey_store.page(uow, after=cursor, limit=limit + 1)
    return connection.build(
        rows, limit, key=lambda r: r.id, to_node=JourneyNode.from_row, after=cursor
    )


async def simulate_journey(
    info: Info, definition: JSON, profile_id: relay.GlobalID, events: JSON | None = None
) -> JSON:
    """The timeline a profile would follow through a definition (saved or not) over a virtual
    clock from now, with hypothetical `events` ([{"event", "properties", "after"}]): each step,
    when, and whether each message would be sent or skipped and why. Writes nothing."""
    uow = await info.context.require(MESSAGES_READ)
    state = info.context.state
    timeline = await simulation.simulate(
        uow,
        state.keys,
        recipients.LinkMaker(state.keys, state.settings.base_url),
        definition,
        profile_id=local_id(profile_id, "Profile", "profileId"),
        events=events,
    )
    return JSON(timeline)


def journey_definition_schema() -> JSON:
    """The JSON Schema (draft 2020-12) of a journey definition."""
    return definition.schema()  # type: ignore[return-value]
