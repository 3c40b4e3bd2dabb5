"""The `deliverabilityReport` field."""

from strawberry.types import Info

from api.graphql.types.deliverability import DeliverabilityReport, DomainDeliverability
from api.graphql.types.sending_domain import dns_settings
from api.settings import Settings
from delivery.deliverability import report
from delivery.sending.relay import Tls
from domain.credentials import MESSAGES_READ


async def deliverability_report(info: Info) -> DeliverabilityReport:
    """Per sending domain: bounce and complaint rates over 7 and 30 days, and the checklist."""
    uow = await info.context.require(MESSAGES_READ)
    settings: Settings = info.context.state.settings
    env = report.Environment(
        relay_tls=settings.smtp_tls is not Tls.NONE,
        public_https=settings.base_url.startswith("https://"),
    )
    now = info.context.state.clock.now()
    rows = await report.build(uow, env, now=now)
    dns = dns_settings(info)
    return DeliverabilityReport(
        generated_at=now, domains=[DomainDeliverability.of(row, dns) for row in rows]
    )
