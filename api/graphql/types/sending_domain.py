"""Sending domains in GraphQL: the domain, the DNS records to publish, its checks."""

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql.nodes import load_nodes
from api.settings import Settings
from delivery.sending import domains
from domain.credentials import MESSAGES_READ


@strawberry.enum
class SendingDomainStatus(Enum):
    PENDING = "PENDING"
    VERIFIED = "VERIFIED"
    FAILING = "FAILING"


@strawberry.enum
class CheckStatus(Enum):
    PASS = "PASS"  # noqa: S105 - a check's outcome, not a password
    WARN = "WARN"
    FAIL = "FAIL"


@strawberry.type
class DnsRecord:
    type: str
    name: str
    value: str


@strawberry.type
class DnsCheck:
    name: str
    status: CheckStatus
    found: str | None
    expected: str | None
    fix: str | None

    @classmethod
    def of(cls, check: dict[str, Any]) -> "DnsCheck":
        return cls(
            name=str(check.get("name", "")), status=CheckStatus(check.get("status", "WARN")),
            found=check.get("found"), expected=check.get("expected"), fix=check.get("fix"),
        )  # fmt: skip


def dns_settings(info: Info) -> domains.DnsSettings:
    settings: Settings = info.context.state.settings
    return settings.sending_dns()


@strawberry.type(name="SendingDomain")
class SendingDomainNode(relay.Node):
    id: relay.NodeID[str]
    domain: str
    dkim_selector: str = strawberry.field(description="The selector of the RSA key that signs now.")
    dns_records: list[DnsRecord] = strawberry.field(
        description="What to publish: each DKIM key, SPF for the relay, DMARC, the return path."
    )
    status: SendingDomainStatus
    checks: list[DnsCheck]
    checked_at: datetime | None

    @classmethod
    def of(cls, row: domains.SendingDomain, dns: domains.DnsSettings) -> "SendingDomainNode":
        return cls(
            id=str(row.id),
            domain=row.domain,
            dkim_selector=row.selector,
            dns_records=[
                DnsRecord(type=r.type, name=r.name, value=r.value)
                for r in domains.records(row, dns)
            ],
            status=SendingDomainStatus(row.status),
            checks=[DnsCheck.of(c) for c in row.checks],
            checked_at=row.checked_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["SendingDomainNode | None"]:
        dns = dns_settings(info)
        return await load_nodes(
            info,
            loader_name="sending_domain",
            node_ids=node_ids,
            scope=MESSAGES_READ,
            fetch=domains.get_many,
            to_node=lambda row: cls.of(row, dns),
        )
