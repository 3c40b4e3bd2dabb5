"""Journey mutations: create, update (a new version), activate, pause, archive, from a recipe."""

from collections.abc import Awaitable, Callable

from strawberry import relay
from strawberry.types import Info

from api.graphql.ids import local_id
from api.graphql.types.input_error import InputError
from api.graphql.types.journey import JourneyInput, JourneyNode, JourneyRecipe
from api.graphql.types.payloads import JourneyPayload
from cdp.segments.definition import DefinitionError
from consent import audit
from delivery.journeys import recipes, services
from delivery.journeys.repository import JourneyRow
from domain.credentials import MESSAGES_WRITE
from domain.errors import DomainError
from domain.uow import UnitOfWork


async def _act(
    info: Info, act: Callable[[UnitOfWork, audit.Actor], Awaitable[JourneyRow]]
) -> JourneyPayload:
    """Run one change as the caller and commit it; its errors are the answer otherwise."""
    uow = await info.context.require(MESSAGES_WRITE)
    actor = audit.Actor.of(await info.context.principal())
    try:
        journey = await act(uow, actor)
    except DefinitionError as error:
        return JourneyPayload(errors=[InputError.of(e) for e in error.errors])
    except DomainError as error:
        return JourneyPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return JourneyPayload(journey=JourneyNode.from_row(journey))


async def create_journey(
    info: Info,
    input: JourneyInput,  # noqa: A002 - the contract's name
) -> JourneyPayload:
    """A draft journey. Steps without an "id" get one, kept by later versions."""
    return await _act(info, lambda uow, actor: services.create(uow, actor, input.to_service()))


async def update_journey(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
    input: JourneyInput,  # noqa: A002 - the contract's name
) -> JourneyPayload:
    """A new version when the definition changed: enrolled profiles finish the version they
    entered with, new entries take this one."""
    return await _act(info, lambda uow, actor: services.update(
        uow, actor, local_id(id, "Journey"), input.to_service()))  # fmt: skip


async def activate_journey(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
) -> JourneyPayload:
    """Start a draft (entries begin), or resume a paused journey where everyone was."""
    return await _act(info, lambda uow, actor: services.activate(uow, actor,
                                                                 local_id(id, "Journey")))  # fmt: skip


async def pause_journey(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
) -> JourneyPayload:
    """Hold everyone in place: nobody enters or moves, and nothing is sent. Exits still apply."""
    return await _act(info, lambda uow, actor: services.pause(uow, actor,
                                                              local_id(id, "Journey")))  # fmt: skip


async def archive_journey(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
) -> JourneyPayload:
    """End the journey: everyone in it exits, and messages not yet sent are skipped."""
    return await _act(info, lambda uow, actor: services.archive(uow, actor,
                                                                local_id(id, "Journey")))  # fmt: skip


async def create_journey_from_recipe(
    info: Info, recipe: JourneyRecipe, from_email: str
) -> JourneyPayload:
    """A seed scenario as a DRAFT journey, with the starter templates it sends (created when
    the workspace lacks them). Review it, simulate it, then activate it."""
    return await _act(info, lambda uow, actor: recipes.create(uow, actor, recipe.value,
                                                              from_email))  # fmt: skip
