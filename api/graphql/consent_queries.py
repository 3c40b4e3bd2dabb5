"""Query fields for compliance staff: data-subject requests, the audit log, suppressions."""

from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.ids import local_id
from api.graphql.profile_queries import IdentifierInput
from api.graphql.types.consent import (
    AuditEntryNode,
    DataSubjectRequestNode,
    DataSubjectRequestStatus,
    SuppressionEntry,
)
from consent import audit, suppression
from consent.dsr import services as dsr
from domain import subjects
from domain.credentials import CONSENT_READ, DSR_MANAGE
from domain.errors import NotFoundError


async def data_subject_request(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
) -> DataSubjectRequestNode | None:
    await info.context.require(DSR_MANAGE)
    try:
        key = local_id(id, "DataSubjectRequest")
    except NotFoundError:
        return None
    nodes = await DataSubjectRequestNode.resolve_nodes(info=info, node_ids=[str(key)])
    return nodes[0]


async def data_subject_requests(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    status: DataSubjectRequestStatus | None = None,
) -> relay.Connection[DataSubjectRequestNode]:
    """Requests oldest first, so the nearest deadlines come first."""
    uow = await info.context.require(DSR_MANAGE)
    limit = connection.page_size(first)
    cursor = connection.decode_cursor(after)
    rows = await dsr.list_requests(
        uow,
        limit=limit + 1,
        after=cursor,
        status=status,
    )
    return connection.build(
        rows, limit, key=lambda r: r.id, to_node=DataSubjectRequestNode.from_domain, after=cursor
    )


async def audit_log(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    action: str | None = None,
    object_id: str | None = None,
) -> relay.Connection[AuditEntryNode]:
    """Audit entries, newest first; filter by action (e.g. consent.recorded) or object id."""
    uow = await info.context.require(CONSENT_READ)
    limit = connection.page_size(first)
    cursor = connection.decode_cursor(after)
    rows = await audit.entries(
        uow, limit=limit + 1, before=cursor, action=action, object_id=object_id
    )
    return connection.build(
        rows, limit, key=lambda r: r.id, to_node=AuditEntryNode.from_domain, after=cursor
    )


async def suppressions(info: Info, identifier: IdentifierInput) -> list[SuppressionEntry]:
    """Suppression entries for an identifier, found by its keyed hash (even after erasure)."""
    uow = await info.context.require(CONSENT_READ)
    kind, value = subjects.directory().normalize(identifier.kind, identifier.value)
    digest = info.context.state.keys.identifier_digest(uow.workspace_id, kind, value)
    return [SuppressionEntry.from_domain(e) for e in await suppression.entries(uow, [digest])]
