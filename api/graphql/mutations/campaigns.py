"""Campaign mutations: create, send (now or later), pause, resume, cancel; and the send policy."""

from collections.abc import Awaitable, Callable
from datetime import datetime

from strawberry import relay
from strawberry.types import Info

from api.graphql.ids import local_id
from api.graphql.types.campaign import CampaignInput, CampaignNode, SendPolicy, SendPolicyInput
from api.graphql.types.input_error import InputError
from api.graphql.types.payloads import CampaignPayload, SendPolicyPayload
from consent import audit
from delivery.sending import campaigns, policy
from delivery.sending.campaigns import Campaign
from domain.credentials import ADMIN, MESSAGES_WRITE
from domain.errors import DomainError
from domain.uow import UnitOfWork


async def _act(
    info: Info, act: Callable[[UnitOfWork, audit.Actor], Awaitable[Campaign]]
) -> CampaignPayload:
    uow = await info.context.require(MESSAGES_WRITE)
    actor = audit.Actor.of(await info.context.principal())
    try:
        campaign = await act(uow, actor)
    except DomainError as error:
        return CampaignPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return CampaignPayload(campaign=CampaignNode.from_row(campaign))


async def create_campaign(
    info: Info,
    input: CampaignInput,  # noqa: A002 - the contract's name
) -> CampaignPayload:
    """A draft campaign: a segment, a template, a purpose and a sender on a sending domain."""
    return await _act(info, lambda uow, actor: campaigns.create(uow, actor, input.to_service()))


async def send_campaign(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
    at: datetime | None = None,
) -> CampaignPayload:
    """Send now, or at `at`. Refused, with nothing queued, when the segment is empty."""
    return await _act(
        info, lambda uow, actor: campaigns.send(uow, actor, local_id(id, "Campaign"), at)
    )


async def pause_campaign(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
) -> CampaignPayload:
    """Stop sending after the messages in flight; resumeCampaign goes on."""
    return await _act(
        info, lambda uow, actor: campaigns.pause(uow, actor, local_id(id, "Campaign"))
    )


async def resume_campaign(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
) -> CampaignPayload:
    return await _act(
        info, lambda uow, actor: campaigns.resume(uow, actor, local_id(id, "Campaign"))
    )


async def cancel_campaign(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
) -> CampaignPayload:
    """Stop for good; what was not sent is SKIPPED with the reason "cancelled"."""
    return await _act(
        info, lambda uow, actor: campaigns.cancel(uow, actor, local_id(id, "Campaign"))
    )


async def set_send_policy(
    info: Info,
    input: SendPolicyInput,  # noqa: A002 - the contract's name
) -> SendPolicyPayload:
    """The workspace's frequency cap, quiet hours and default time zone for marketing messages,
    and the throttle's rates for every message."""
    uow = await info.context.require(ADMIN)
    actor = audit.Actor.of(await info.context.principal())
    defaults = policy.SendPolicy()
    current = await policy.get(uow)  # tracking stays as it is unless the input says
    wanted = policy.SendPolicy(
        input.frequency_cap, input.frequency_hours, input.quiet_hours_start,
        input.quiet_hours_end, input.default_timezone or defaults.default_timezone,
        defaults.sending_domain_rate if input.sending_domain_rate is None
        else input.sending_domain_rate,
        defaults.recipient_domain_rate if input.recipient_domain_rate is None
        else input.recipient_domain_rate,
        current.track_opens if input.track_opens is None else input.track_opens,
        current.track_clicks if input.track_clicks is None else input.track_clicks,
    )  # fmt: skip
    try:
        found = await policy.set_policy(uow, actor, wanted)
    except DomainError as error:
        return SendPolicyPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return SendPolicyPayload(
        policy=SendPolicy(
            frequency_cap=found.frequency_cap, frequency_hours=found.frequency_hours,
            quiet_hours_start=found.quiet_start, quiet_hours_end=found.quiet_end,
            default_timezone=found.default_timezone,
            sending_domain_rate=found.sending_domain_rate,
            recipient_domain_rate=found.recipient_domain_rate,
            track_opens=found.track_opens, track_clicks=found.track_clicks,
        )
    )  # fmt: skip
