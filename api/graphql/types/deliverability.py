"""The deliverability report in GraphQL: per sending domain, its rates and the checklist."""

from datetime import datetime

import strawberry

from api.graphql.types.sending_domain import CheckStatus, SendingDomainNode
from delivery.deliverability import report
from delivery.sending import domains


@strawberry.type
class DeliverabilityRates:
    sent: int
    hard_bounced: int
    soft_bounced: int
    complained: int
    bounce_rate: float = strawberry.field(description="Hard bounces per message sent.")
    complaint_rate: float = strawberry.field(description="Complaints per message sent.")

    @classmethod
    def of(cls, rates: report.Rates) -> "DeliverabilityRates":
        return cls(
            sent=rates.sent, hard_bounced=rates.hard_bounced, soft_bounced=rates.soft_bounced,
            complained=rates.complained, bounce_rate=rates.bounce_rate,
            complaint_rate=rates.complaint_rate,
        )  # fmt: skip


@strawberry.type
class ChecklistItem:
    name: str
    status: CheckStatus
    detail: str
    fix: str | None


@strawberry.type
class DomainDeliverability:
    sending_domain: SendingDomainNode
    last_7_days: DeliverabilityRates
    last_30_days: DeliverabilityRates
    checklist: list[ChecklistItem] = strawberry.field(
        description="The bulk-sender requirements of Gmail and Yahoo, each with a status and a fix."
    )

    @classmethod
    def of(cls, row: report.DomainReport, dns: domains.DnsSettings) -> "DomainDeliverability":
        return cls(
            sending_domain=SendingDomainNode.of(row.domain, dns),
            last_7_days=DeliverabilityRates.of(row.last_7_days),
            last_30_days=DeliverabilityRates.of(row.last_30_days),
            checklist=[ChecklistItem(name=i.name, status=CheckStatus(i.status), detail=i.detail,
                                     fix=i.fix) for i in row.checklist],
        )  # fmt: skip


@strawberry.type
class DeliverabilityReport:
    generated_at: datetime
    domains: list[DomainDeliverability]
