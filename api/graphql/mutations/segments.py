"""Segment mutations: create, update, delete."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from strawberry import relay
from strawberry.types import Info

from api.graphql.ids import local_id
from api.graphql.types.input_error import InputError
from api.graphql.types.payloads import DeleteSegmentPayload, SegmentPayload
from api.graphql.types.segment import SegmentInput, SegmentNode
from cdp.segments import definition, services
from cdp.segments.repository import SegmentRow
from consent import audit
from domain.credentials import SEGMENTS_WRITE
from domain.errors import DomainError
from domain.uow import UnitOfWork

T = TypeVar("T")


async def _act(
    info: Info, act: Callable[[UnitOfWork, audit.Actor], Awaitable[T]]
) -> T | list[InputError]:
    """Run one change as the caller and commit it; its errors are the answer otherwise."""
    uow = await info.context.require(SEGMENTS_WRITE)
    actor = audit.Actor.of(await info.context.principal())
    try:
        result = await act(uow, actor)
    except definition.DefinitionError as error:
        return [InputError.of(e) for e in error.errors]
    except DomainError as error:
        return [InputError.from_domain(error)]
    await uow.commit()
    return result


def _input(data: SegmentInput) -> services.SegmentInput:
    return services.SegmentInput(data.name, data.description, data.definition)


async def create_segment(
    info: Info,
    input: SegmentInput,  # noqa: A002 - the contract's name
) -> SegmentPayload:
    """Save a segment. Its members are computed in the background (state COMPUTING, then READY)."""
    done = await _act(info, lambda uow, actor: services.create(uow, actor, _input(input)))
    if isinstance(done, list):
        return SegmentPayload(errors=done)
    return SegmentPayload(segment=SegmentNode.from_row(done))


async def update_segment(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
    input: SegmentInput,  # noqa: A002 - the contract's name
) -> SegmentPayload:
    """Change a segment. A new definition is computed in full in the background."""

    async def act(uow: UnitOfWork, actor: audit.Actor) -> SegmentRow:
        return await services.update(uow, actor, local_id(id, "Segment"), _input(input))

    done = await _act(info, act)
    if isinstance(done, list):
        return SegmentPayload(errors=done)
    return SegmentPayload(segment=SegmentNode.from_row(done))


async def delete_segment(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
) -> DeleteSegmentPayload:
    """Delete a segment with its members and history; refused with IN_USE while another uses it."""

    async def act(uow: UnitOfWork, actor: audit.Actor) -> relay.GlobalID:
        await services.delete(uow, actor, local_id(id, "Segment"))
        return id

    done = await _act(info, act)
    if isinstance(done, list):
        return DeleteSegmentPayload(errors=done)
    return DeleteSegmentPayload(deleted_id=done)
