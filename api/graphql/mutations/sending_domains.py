"""addSendingDomain, rotateDkimKey and verifySendingDomain."""

from strawberry import relay
from strawberry.types import Info

from api.graphql.ids import local_id
from api.graphql.types.input_error import InputError
from api.graphql.types.payloads import SendingDomainPayload
from api.graphql.types.sending_domain import SendingDomainNode, dns_settings
from consent import audit
from delivery.deliverability import verification
from delivery.sending import domains
from domain.credentials import ADMIN
from domain.errors import DomainError


async def add_sending_domain(info: Info, domain: str) -> SendingDomainPayload:
    """Add a domain to send from: its DKIM key is made now; publish the records it answers with."""
    uow = await info.context.require(ADMIN)
    actor = audit.Actor.of(await info.context.principal())
    state = info.context.state
    try:
        row = await domains.add(
            uow, actor, state.secret, domain, ed25519=state.settings.dkim_ed25519
        )
    except DomainError as error:
        return SendingDomainPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return SendingDomainPayload(sending_domain=SendingDomainNode.of(row, dns_settings(info)))


async def rotate_dkim_key(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
) -> SendingDomainPayload:
    """Make a new DKIM key under a new selector; the old one signs until the new record is seen."""
    uow = await info.context.require(ADMIN)
    actor = audit.Actor.of(await info.context.principal())
    state = info.context.state
    try:
        row = await domains.rotate(
            uow, actor, state.secret, local_id(id, "SendingDomain"),
            ed25519=state.settings.dkim_ed25519,
        )  # fmt: skip
    except DomainError as error:
        return SendingDomainPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return SendingDomainPayload(sending_domain=SendingDomainNode.of(row, dns_settings(info)))


async def verify_sending_domain(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
) -> SendingDomainPayload:
    """Check the domain's DNS records now: each check with what was found, expected, and a fix."""
    uow = await info.context.require(ADMIN)
    actor = audit.Actor.of(await info.context.principal())
    try:
        row = await verification.verify(
            uow, actor, local_id(id, "SendingDomain"), dns_settings(info),
            info.context.state.settings.dns_checks(),
        )  # fmt: skip
    except DomainError as error:
        return SendingDomainPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return SendingDomainPayload(sending_domain=SendingDomainNode.of(row, dns_settings(info)))
