"""Data-subject request mutations, the restriction lift, and the workspace's event retention."""

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql.errors import InputError
from api.graphql.ids import local_id
from api.graphql.profile_queries import IdentifierInput
from api.graphql.scalars import JSON
from api.graphql.types.consent import DataSubjectRequestNode, DataSubjectRequestType
from cdp import retention
from consent import audit
from consent.dsr import services as dsr
from domain.credentials import ADMIN, DSR_MANAGE
from domain.errors import DomainError


@strawberry.input
class DataSubjectRequestInput:
    identifier: IdentifierInput
    type: DataSubjectRequestType
    note: str | None = None
    corrections: JSON | None = strawberry.field(
        default=None,
        description="RECTIFICATION only: traits to set; a null value removes the trait.",
    )


@strawberry.type
class CreateDataSubjectRequestPayload:
    data_subject_request: DataSubjectRequestNode | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class ExtendDataSubjectRequestPayload(CreateDataSubjectRequestPayload):
    pass


@strawberry.type
class RejectDataSubjectRequestPayload(CreateDataSubjectRequestPayload):
    pass


@strawberry.type
class LiftRestrictionPayload:
    lifted: int = strawberry.field(default=0, description="Suppression entries removed.")
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class SetEventRetentionPayload:
    days: int | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


async def create_data_subject_request(
    info: Info,
    input: DataSubjectRequestInput,  # noqa: A002 - the contract's name
) -> CreateDataSubjectRequestPayload:
    """File a verified request. It is due in one calendar month and processed by a worker."""
    uow = await info.context.require(DSR_MANAGE)
    actor = audit.Actor.of(await info.context.principal())
    try:
        request = await dsr.create(
            uow,
            info.context.state.keys,
            actor,
            kind=input.identifier.kind,
            value=input.identifier.value,
            request_type=input.type,
            note=input.note,
            corrections=input.corrections,
        )
    except DomainError as error:
        return CreateDataSubjectRequestPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return CreateDataSubjectRequestPayload(
        data_subject_request=DataSubjectRequestNode.from_domain(request)
    )


async def extend_data_subject_request(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
    months: int,
    reason: str,
) -> ExtendDataSubjectRequestPayload:
    """Extend the deadline by 1 or 2 calendar months (3 months in all at most), with a reason."""
    uow = await info.context.require(DSR_MANAGE)
    actor = audit.Actor.of(await info.context.principal())
    try:
        key = local_id(id, "DataSubjectRequest")
        request = await dsr.extend(uow, actor, key, months=months, reason=reason)
    except DomainError as error:
        return ExtendDataSubjectRequestPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return ExtendDataSubjectRequestPayload(
        data_subject_request=DataSubjectRequestNode.from_domain(request)
    )


async def reject_data_subject_request(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
    reason: str,
) -> RejectDataSubjectRequestPayload:
    """Refuse a request that is manifestly unfounded or excessive (Art. 12(5)), saying why."""
    uow = await info.context.require(DSR_MANAGE)
    actor = audit.Actor.of(await info.context.principal())
    try:
        key = local_id(id, "DataSubjectRequest")
        request = await dsr.reject(uow, actor, key, reason=reason)
    except DomainError as error:
        return RejectDataSubjectRequestPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return RejectDataSubjectRequestPayload(
        data_subject_request=DataSubjectRequestNode.from_domain(request)
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


async def set_event_retention(info: Info, days: int | None) -> SetEventRetentionPayload:
    """Delete this workspace's events older than `days` (checked hourly); null keeps them."""
    uow = await info.context.require(ADMIN)
    actor = audit.Actor.of(await info.context.principal())
    try:
        await retention.set_workspace_retention(uow, days)
    except DomainError as error:
        return SetEventRetentionPayload(errors=[InputError.from_domain(error)])
    await audit.record(
        uow,
        actor,
        "workspace.event_retention_set",
        object_type="workspace",
        object_id=uow.workspace_id,
        details={"days": days},
    )
    await uow.commit()
    return SetEventRetentionPayload(days=days)
