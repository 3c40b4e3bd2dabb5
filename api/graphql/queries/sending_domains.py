"""The `sendingDomains` field."""

from strawberry.types import Info

from api.graphql.types.sending_domain import SendingDomainNode, dns_settings
from delivery.sending import domains
from domain.credentials import MESSAGES_READ


async def sending_domains(info: Info) -> list[SendingDomainNode]:
    """The workspace's sending domains, by name, with the DNS records each needs."""
    uow = await info.context.require(MESSAGES_READ)
    dns = dns_settings(info)
    return [SendingDomainNode.of(row, dns) for row in await domains.list_all(uow)]
