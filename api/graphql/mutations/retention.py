"""setEventRetention."""

from strawberry.types import Info

from api.graphql.types.input_error import InputError
from api.graphql.types.payloads import SetEventRetentionPayload
from cdp import retention
from consent import audit
from domain.credentials import ADMIN
from domain.errors import DomainError


async def set_event_retention(info: Info, days: int | None = None) -> SetEventRetentionPayload:
    """Delete this workspace's events older than `days` (checked hourly); null keeps them."""
    uow = await info.context.require(ADMIN)
    actor = audit.Actor.of(await info.context.principal())
    try:
        await retention.set_workspace_retention(uow, actor, days)
    except DomainError as error:
        return SetEventRetentionPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return SetEventRetentionPayload(days=days)
