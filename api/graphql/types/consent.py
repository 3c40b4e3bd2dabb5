"""Consent, the contact gate, notices, data-subject requests and the audit log in GraphQL."""

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql.nodes import load_nodes
from api.graphql.scalars import JSON
from consent import audit
from consent import model as consent_model
from consent.dsr import model as dsr_model
from consent.dsr import services as dsr
from domain.credentials import CONSENT_READ, DSR_MANAGE

# The domain's own enums, shown as they are: GraphQL uses the member names,
# which are also their values.
ConsentStatus = consent_model.ConsentStatus
DataSubjectRequestType = dsr_model.RequestType
DataSubjectRequestStatus = dsr_model.RequestStatus
strawberry.enum(ConsentStatus, name="ConsentStatus")
strawberry.enum(DataSubjectRequestType, name="DataSubjectRequestType")
strawberry.enum(DataSubjectRequestStatus, name="DataSubjectRequestStatus")


@strawberry.type
class Consent:
    purpose: str = strawberry.field(
        description=(
            'A purpose such as "newsletter". A "marketing" record also decides every '
            "non-transactional purpose that has no record of its own on the channel."
        )
    )
    channel: str
    status: ConsentStatus
    lawful_basis: str
    source: str
    notice_version: str | None
    recorded_at: datetime
    recorded_by: str = strawberry.field(description="The actor: token, OAuth client or link.")

    @classmethod
    def from_record(cls, record: consent_model.ConsentRecord) -> "Consent":
        return cls(
            purpose=record.purpose,
            channel=record.channel,
            status=record.status,
            lawful_basis=record.lawful_basis,
            source=record.source,
            notice_version=record.notice_version,
            recorded_at=record.recorded_at,
            recorded_by=record.actor,
        )


@strawberry.type
class Contactability:
    allowed: bool
    reason: str | None = strawberry.field(
        description=(
            "What decided: a suppression, the consent record that decided (its purpose, "
            'the one asked for or "marketing", and its source), or the default.'
        )
    )

    @classmethod
    def from_domain(cls, answer: consent_model.Contactability) -> "Contactability":
        return cls(allowed=answer.allowed, reason=answer.reason)


@strawberry.type
class SuppressionEntry:
    identifier_kind: str
    channel: str = strawberry.field(description='A channel, or "*" for every channel.')
    purpose: str = strawberry.field(
        description='A purpose, "marketing" for all but transactional, or "*" for all.'
    )
    reason: str
    source: str
    created_at: datetime

    @classmethod
    def from_domain(cls, entry: consent_model.Suppression) -> "SuppressionEntry":
        return cls(
            identifier_kind=entry.identifier_kind,
            channel=entry.channel,
            purpose=entry.purpose,
            reason=entry.reason.value,
            source=entry.source,
            created_at=entry.created_at,
        )


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


@strawberry.type(name="AuditEntry")
class AuditEntryNode(relay.Node):
    id: relay.NodeID[str]
    at: datetime
    actor_kind: str
    actor_id: str
    action: str
    object_type: str
    object_id: str
    request_id: str | None
    details: JSON

    @classmethod
    def from_domain(cls, entry: audit.AuditEntry) -> "AuditEntryNode":
        return cls(
            id=str(entry.id),
            at=entry.at,
            actor_kind=entry.actor_kind,
            actor_id=entry.actor_id,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            request_id=entry.request_id,
            details=JSON(entry.details),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["AuditEntryNode | None"]:
        return await load_nodes(
            info,
            loader_name="audit_entry",
            node_ids=node_ids,
            scope=CONSENT_READ,
            fetch=audit.entries_by_id,
            to_node=cls.from_domain,
        )
