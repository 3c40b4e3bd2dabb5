"""Data-subject request mutations, and the lift of a restriction that one imposed."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from strawberry import relay
from strawberry.types import Info

from api.graphql.ids import local_id
from api.graphql.types.dsr import DataSubjectRequestInput, DataSubjectRequestNode
from api.graphql.types.identity import IdentifierInput
from api.graphql.types.input_error import InputError
from api.graphql.types.payloads import (
    CreateDataSubjectRequestPayload,
    ExtendDataSubjectRequestPayload,
    LiftRestrictionPayload,
    RejectDataSubjectRequestPayload,
)
from consent import audit
from consent.dsr import services as dsr
from consent.dsr.model import DataSubjectRequest
from domain.credentials import DSR_MANAGE
from domain.errors import DomainError
from domain.uow import UnitOfWork

Act = Callable[[UnitOfWork, audit.Actor], Awaitable[DataSubjectRequest]]
P = TypeVar("P", bound=CreateDataSubjectRequestPayload)


async def _act_on_request(info: Info, payload: type[P], act: Act) -> P:
    """Run one change to a request as the caller; its errors answer in the payload."""
    uow = await info.context.require(DSR_MANAGE)
    actor = audit.Actor.of(await info.context.principal())
    try:
        request = await act(uow, actor)
    except DomainError as error:
        return payload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return payload(data_subject_request=DataSubjectRequestNode.from_domain(request))


async def create_data_subject_request(
    info: Info,
    input: DataSubjectRequestInput,  # noqa: A002 - the contract's name
) -> CreateDataSubjectRequestPayload:
    """File a verified request. It is due in one calendar month and processed by a worker."""
    keys = info.context.state.keys
    return await _act_on_request(
        info,
        CreateDataSubjectRequestPayload,
        lambda uow, actor: dsr.create(
            uow,
            keys,
            actor,
            kind=input.identifier.kind,
            value=input.identifier.value,
            request_type=input.type,
            note=input.note,
            corrections=input.corrections,
        ),
    )


async def extend_data_subject_request(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
    months: int,
    reason: str,
) -> ExtendDataSubjectRequestPayload:
    """Extend the deadline by 1 or 2 calendar months (3 months in all at most), with a reason."""
    return await _act_on_request(
        info,
        ExtendDataSubjectRequestPayload,
        lambda uow, actor: dsr.extend(
            uow, actor, local_id(id, "DataSubjectRequest"), months=months, reason=reason
        ),
    )


async def reject_data_subject_request(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
    reason: str,
) -> RejectDataSubjectRequestPayload:
    """Refuse a request that is manifestly unfounded or excessive (Art. 12(5)), saying why."""
    return await _act_on_request(
        info,
        RejectDataSubjectRequestPayload,
        lambda uow, actor: dsr.reject(
            uow, actor, local_id(id, "DataSubjectRequest"), reason=reason
        ),
    )


async def lift_restriction(info: Info, identifier: IdentifierInput) -> LiftRestrictionPayload:
    """End a RESTRICTION: the person may be processed and contacted again."""
    uow = await info.context.require(DSR_MANAGE)
    actor = audit.Actor.of(await info.context.principal())
    try:
        lifted = await dsr.lift_restriction(
            uow, info.context.state.keys, actor, kind=identifier.kind, value=identifier.value
        )
    except DomainError as error:
        return LiftRestrictionPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return LiftRestrictionPayload(lifted=lifted)
