"""Receiving reports: which workspace a message or event is for, and keeping it for processing.

Bounces come back to the VERP return path, `b-…@bounces.<sending domain>`,
and feedback loops to any address at that host. The sending domain names
the workspaces that send from it; when there are several, the one holding
the delivery that the signed return path names wins. A report is stored
(raw, for SMTP) and its processing queued in one transaction, before the
sender is told it was accepted: nothing accepted is lost.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from delivery.deliverability import reports
from delivery.deliverability import repository as repo
from delivery.sending import message
from domain.ids import new_id
from domain.uow import UnitOfWork

ROUTE_TTL = 60.0  # seconds a domain's workspaces are remembered
ROUTE_CACHE = 10_000  # domains remembered at most: the RCPT domains are the senders' choice


def sending_domain_of(address: str) -> str | None:
    """The sending domain whose return-path host this address is at, or None."""
    host = address.strip().strip("<>").rpartition("@")[2].lower().rstrip(".")
    label = f"{message.BOUNCE_LABEL}."
    if not host.startswith(label) or host.count(".") < 2:  # noqa: PLR2004 - bounces.name.tld
        return None
    return host[len(label) :]


@dataclass
class Router:
    """Finds the workspace of an address; remembers each domain's workspaces for a minute."""

    units: Callable[[UUID | None], UnitOfWork]
    secret: str
    _seen: dict[str, tuple[float, list[UUID]]] | None = None

    async def workspaces(self, domain: str) -> list[UUID]:
        seen = self._seen if self._seen is not None else {}
        self._seen = seen
        cached = seen.get(domain)
        if cached is not None and time.monotonic() - cached[0] < ROUTE_TTL:
            return cached[1]
        async with self.units(None) as uow:
            found = await repo.workspaces_for_domain(uow, domain)
        if len(seen) >= ROUTE_CACHE:
            seen.clear()
        seen[domain] = (time.monotonic(), found)
        return found

    async def workspace_of(self, address: str) -> UUID | None:
        domain = sending_domain_of(address)
        if domain is None:
            return None
        return await self._pick(domain, message.delivery_of(self.secret, address))

    async def workspace_of_mail(self, address: str, raw: bytes) -> UUID | None:
        """`workspace_of`, and when a domain is shared and the address names no delivery (a
        feedback loop's address), the workspace holding the delivery the message reports on."""
        domain = sending_domain_of(address)
        if domain is None:
            return None
        named = message.delivery_of(self.secret, address)
        if named is not None or len(await self.workspaces(domain)) <= 1:
            return await self._pick(domain, named)
        report = reports.classify(raw)
        for path in report.original_return_paths:
            if (found := message.delivery_of(self.secret, path)) is not None:
                return await self._pick(domain, found)
        return await self.workspace_of_event(None, report.original_message_id)

    async def workspace_of_event(
        self, return_path: str | None, message_id: str | None
    ) -> UUID | None:
        """A relay's event: by the return path it reports, else by our Message-ID's domain."""
        if return_path and (found := await self.workspace_of(return_path)) is not None:
            return found
        if not message_id:
            return None
        local, _, domain = message_id.strip().strip("<>").rpartition("@")
        try:
            delivery_id: UUID | None = UUID(local)
        except ValueError:
            delivery_id = None
        return await self._pick(domain.lower(), delivery_id) if domain else None

    async def _pick(self, domain: str, delivery_id: UUID | None) -> UUID | None:
        """The workspace sending from `domain`; of several, the one holding the delivery."""
        candidates = await self.workspaces(domain)
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        if delivery_id is not None:
            for workspace_id in candidates:
                async with self.units(workspace_id) as uow:
                    if await repo.holds_delivery(uow, delivery_id):
                        return workspace_id
        return candidates[0]


async def keep(uow: UnitOfWork, *reports: repo.NewReport) -> None:
    """Store reports and queue their processing, in the caller's unit of work.

    A relay's event stored before (the same external id) is not stored again.
    """
    if not reports:
        return
    _, stored, _ = await uow.pipeline(*repo.store(uow.workspace_id, reports, job_id=new_id()))
    fresh = sum(1 for r in reports if r.external_id is None)
    if len(stored) < fresh:
        # Only a relay's event seen before may be left out: mail is never dropped.
        raise RuntimeError(f"{fresh - len(stored)} of {len(reports)} reports were not stored")


def mail_report(
    *, mail_from: str | None, rcpt_to: tuple[str, ...], raw: bytes, at: datetime
) -> repo.NewReport:
    return repo.NewReport(
        id=new_id(), source="smtp", received_at=at, size=len(raw), mail_from=mail_from,
        rcpt_to=rcpt_to, raw=raw,
    )  # fmt: skip
