"""Data-subject requests, and the request a caller files, in GraphQL."""

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql.nodes import load_nodes
from api.graphql.scalars import JSON
from api.graphql.types.identity import IdentifierInput
from consent import audit
from consent.dsr import model as dsr_model
from consent.dsr import services as dsr
from domain.credentials import DSR_MANAGE

# The domain's own enums, shown as they are: GraphQL uses the member names,
# which are also their values.
DataSubjectRequestType = dsr_model.RequestType
DataSubjectRequestStatus = dsr_model.RequestStatus
strawberry.enum(DataSubjectRequestType, name="DataSubjectRequestType")
strawberry.enum(DataSubjectRequestStatus, name="DataSubjectRequestStatus")


@strawberry.type(name="DataSubjectRequest")
class DataSubjectRequestNode(relay.Node):
    id: relay.NodeID[str]
    type: DataSubjectRequestType
    status: DataSubjectRequestStatus
    identifier_kind: str
    received_at: datetime
    due_at: datetime
    completed_at: datetime | None
    extended_months: int
    extension_reason: str | None
    rejection_reason: str | None
    note: str | None
    corrections: JSON | None
    requested_by: str

    @classmethod
    def from_domain(cls, request: dsr_model.DataSubjectRequest) -> "DataSubjectRequestNode":
        return cls(
            id=str(request.id),
            type=request.type,
            status=request.status,
            identifier_kind=request.identifier_kind,
            received_at=request.received_at,
            due_at=request.due_at,
            completed_at=request.completed_at,
            extended_months=request.extended_months,
            extension_reason=request.extension_reason,
            rejection_reason=request.rejection_reason,
            note=request.note,
            corrections=JSON(request.corrections) if request.corrections is not None else None,
            requested_by=request.actor,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["DataSubjectRequestNode | None"]:
        return await load_nodes(
            info,
            loader_name="data_subject_request",
            node_ids=node_ids,
            scope=DSR_MANAGE,
            fetch=dsr.get_many,
            to_node=cls.from_domain,
        )

    @strawberry.field(
        description=(
            "ACCESS and PORTABILITY: everything held about the subject, once COMPLETED. "
            "Each read is written to the audit log."
        )
    )
    async def export(self, info: Info) -> JSON | None:
        if self.status is not DataSubjectRequestStatus.COMPLETED:
            return None
        reader = await info.context.require(DSR_MANAGE)
        actor = audit.Actor.of(await info.context.principal())
        # The read is audited, so it writes: in a transaction of its own, as a
        # query's transaction is read-only.
        async with info.context.state.uow() as uow:
            await uow.select_workspace(reader.workspace_id)
            document = await dsr.read_export(uow, actor, dsr_model.parse_id(self.id))
            if document is None:
                return None
            await uow.commit()
        return JSON(document)


@strawberry.input
class DataSubjectRequestInput:
    identifier: IdentifierInput
    type: DataSubjectRequestType
    note: str | None = None
    corrections: JSON | None = strawberry.field(
        default=None,
        description="RECTIFICATION only: traits to set; a null value removes the trait.",
    )
