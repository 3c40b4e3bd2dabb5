"""The `auditLog` field, for compliance staff."""

from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.types.audit import AuditEntryNode
from consent import audit
from domain.credentials import CONSENT_READ


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
