"""Acting on stored reports: classify, find the delivery, suppress, update, audit, guard.

A batch of reports is one transaction: what they do (suppressions, delivery
statuses, audit entries, a complaint's event, a campaign paused by the
guard) commits with their PROCESSED state, or none of it does and the batch
is tried again. A report that cannot be processed on its own is marked
FAILED with the error, so one bad report never holds the others up.
"""

import dataclasses
import email.parser
import email.policy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from typing import Any
from uuid import UUID

from cdp import ingest, queries
from cdp.model import Identifier, Message
from consent import audit, links, suppression
from consent.keys import Keys
from consent.model import ANY, MARKETING, SuppressionReason
from delivery.deliverability import guard, reports
from delivery.deliverability import model as m
from delivery.deliverability import repository as repo
from delivery.sending import message
from delivery.tracking import repository as tracking_store
from delivery.tracking import unsubscribes
from delivery.tracking.processing import message_about
from domain.uow import UnitOfWork

BATCH = 200
SOFT_BOUNCE_DAYS = 3  # soft bounces on this many days ...
SOFT_BOUNCE_WINDOW = timedelta(days=14)  # ... within this window suppress the address
SOFT_RETRY = timedelta(hours=1)
ONE_DAY = timedelta(days=1)  # a soft-bounced message of a campaign still sending
ACTOR = audit.Actor.system("deliverability")
COMPLAINED_EVENT = "Email Complained"
MAILTO_SOURCE = "mailto-unsubscribe"
_MESSAGE_ID = re.compile(r"<?([0-9a-fA-F-]{36})@[^>]*>?")
_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def _asks_unsubscribe(raw: bytes) -> bool:
    subject = _HEADERS.parsebytes(raw[:65536]).get("subject", "")
    return "unsubscribe" in str(subject).lower()


def finding_of(row: repo.Pending) -> m.Finding:
    if row.source != "smtp":
        return m.Finding(
            kind=row.kind or "other", bounce_class=row.bounce_class or m.NONE,
            recipients=tuple(row.recipients or ()), status=row.status_code,
            message_id=row.message_id, return_paths=(row.mail_from,) if row.mail_from else (),
            # A relay reports each retry it makes as a deferral: not a bounce yet.
            delayed=row.kind == "deferred", diagnostic=row.diagnostic,
        )  # fmt: skip
    raw = row.raw or b""
    report = reports.classify(raw)
    # A forwarded address bounces as its final address; ours is the original recipient.
    originals = tuple(f.original_recipient for f in report.failures if f.original_recipient)
    named = tuple(dict.fromkeys((*report.recipients, *originals)))
    return m.Finding(
        kind=report.kind, bounce_class=report.bounce_class, recipients=named,
        status=report.status, delayed=report.delayed, message_id=report.original_message_id,
        return_paths=(*row.rcpt_to, *report.original_return_paths),
        diagnostic=next((f.diagnostic for f in report.failures if f.diagnostic), None),
        unsubscribe=report.kind == "other" and _asks_unsubscribe(raw),
    )  # fmt: skip


def _named_delivery(finding: m.Finding, secret: str) -> tuple[UUID | None, UUID | None]:
    """(the delivery a signed VERP address names, the delivery its Message-ID names)."""
    verp = next(
        (d for a in finding.return_paths if (d := message.delivery_of(secret, a)) is not None),
        None,
    )
    by_id = None
    if finding.message_id and (found := _MESSAGE_ID.fullmatch(finding.message_id.strip())):
        try:
            by_id = UUID(found.group(1))
        except ValueError:
            by_id = None
    return verp, by_id


def _same_message_id(stored: str | None, given: str | None) -> bool:
    if not stored or not given:
        return False
    return stored.strip().strip("<>").lower() == given.strip().strip("<>").lower()


@dataclass
class _Work:
    """What a batch will do, gathered before anything is written."""

    done: list[repo.Done] = field(default_factory=list)
    changes: list[repo.DeliveryChange] = field(default_factory=list)
    audits: dict[str, list[tuple[object, Mapping[str, Any] | None]]] = field(default_factory=dict)
    complaints: list[tuple[m.Target, tuple[str, ...]]] = field(default_factory=list)
    guarded: set[UUID] = field(default_factory=set)
    suppress: list[suppression.Request] = field(default_factory=list)
    soft: list["_Soft"] = field(default_factory=list)


@dataclass(frozen=True)
class _Soft:
    """A soft bounce's addresses, counted with the batch's others once the batch is read."""

    report_id: UUID
    profile_id: UUID
    day: date
    digests: list[tuple[str, bytes]]


async def process(uow: UnitOfWork, keys: Keys, secret: str, rows: Sequence[repo.Pending]) -> None:
    """Act on claimed reports, in the caller's transaction."""
    findings = [finding_of(row) for row in rows]
    named = [_named_delivery(f, secret) for f in findings]
    wanted = {d for pair in named for d in pair if d is not None}
    found = await repo.deliveries(uow, sorted(wanted))
    targets = [_target(f, pair, found) for f, pair in zip(findings, named, strict=True)]
    emails = await _emails(uow, [t.profile_id for t in targets if t is not None])
    work = _Work()
    now = uow.clock.now()
    for row, finding, target in zip(rows, findings, targets, strict=True):
        mine = emails.get(target.profile_id, {}) if target else {}
        decision = m.decide(finding, target, frozenset(mine))
        outcome = await _act(uow, keys, row=row, finding=finding, target=target,
                             decision=decision, mine=mine, work=work)  # fmt: skip
        work.done.append(repo.Done(
            row.id, "PROCESSED", finding.kind, finding.bounce_class, finding.status,
            list(finding.recipients), finding.message_id,
            target.delivery_id if target else None, target.profile_id if target else None,
            outcome,
        ))  # fmt: skip
    await _count_soft_bounces(uow, work)
    await suppression.add_many(uow, ACTOR, work.suppress)
    await repo.update_deliveries(uow, work.changes, now)
    for action, items in work.audits.items():
        await audit.record_many(uow, ACTOR, action, object_type="delivery", items=items)
    await _record_complaints(uow, work.complaints, emails)
    await guard.check(uow, sorted(work.guarded))
    await repo.mark_done(uow, work.done, now)


def _target(
    finding: m.Finding, named: tuple[UUID | None, UUID | None], found: dict[UUID, repo.DeliveryRow]
) -> m.Target | None:
    verp, by_id = named
    if verp is not None and verp in found:
        row, by_verp = found[verp], True
    elif (
        by_id is not None
        and by_id in found
        and _same_message_id(found[by_id].message_id, finding.message_id)
    ):
        row, by_verp = found[by_id], False
    else:
        return None
    return m.Target(row.id, row.campaign_id, row.profile_id, row.purpose, row.status,
                    row.campaign_status, by_verp)  # fmt: skip


async def _emails(uow: UnitOfWork, profile_ids: Sequence[UUID]) -> dict[UUID, dict[str, str]]:
    """Each recipient's email addresses (lower case → as stored), merged-away profiles' too."""
    if not profile_ids:
        return {}
    merged = await queries.merged_ids(uow, sorted(set(profile_ids)))
    held = await queries.identities_of(uow, [i for ids in merged.values() for i in ids])
    return {
        survivor: {i.value.lower(): i.value for pid in ids for i in held.get(pid, [])
                   if i.kind == "email"}
        for survivor, ids in merged.items()
    }  # fmt: skip


def _digests(
    keys: Keys, uow: UnitOfWork, mine: dict[str, str], addresses: Sequence[str]
) -> list[tuple[str, bytes]]:
    return [
        ("email", keys.identifier_digest(uow.workspace_id, "email", mine[a])) for a in addresses
    ]


async def _act(
    uow: UnitOfWork,
    keys: Keys,
    *,
    row: repo.Pending,
    finding: m.Finding,
    target: m.Target | None,
    decision: m.Decision,
    mine: dict[str, str],
    work: _Work,
) -> str:
    if target is None or decision.act in (m.Act.NOTHING, m.Act.DELAY):
        return decision.outcome
    if decision.act == m.Act.UNSUBSCRIBE:
        await links.one_click_unsubscribe(
            uow, keys, links.LinkTarget(uow.workspace_id, target.profile_id, "email", target.purpose),
            links.Origin(), source=MAILTO_SOURCE,
        )  # fmt: skip
        await unsubscribes.record_delivery(uow, target.delivery_id, target.purpose,
                                           source=MAILTO_SOURCE)  # fmt: skip
        return decision.outcome
    source = f"report:{row.id}"
    digests = _digests(keys, uow, mine, decision.addresses)
    if decision.act == m.Act.HARD_BOUNCE:
        work.suppress.append(suppression.Request(digests, "email", ANY,
                                                 SuppressionReason.HARD_BOUNCE, source,
                                                 target.profile_id))  # fmt: skip
        work.guarded.add(target.campaign_id)
    elif decision.act == m.Act.COMPLAINT:
        work.suppress.append(suppression.Request(digests, "email", MARKETING,
                                                 SuppressionReason.COMPLAINT, source,
                                                 target.profile_id))  # fmt: skip
        work.complaints.append((target, decision.addresses))
        work.guarded.add(target.campaign_id)
    elif decision.act == m.Act.SOFT_BOUNCE:
        # The day the report came, not the day it is processed: a backlog keeps its days.
        day = row.received_at.astimezone(UTC).date()
        work.soft.append(_Soft(row.id, target.profile_id, day, digests))
    _change_delivery(uow, finding, target, decision, work, report_id=row.id)
    return decision.outcome


async def _count_soft_bounces(uow: UnitOfWork, work: _Work) -> None:
    """Suppress the addresses that soft-bounced on enough days of the window."""
    pairs = [(soft, kind, digest) for soft in work.soft for kind, digest in soft.digests]
    days = await repo.soft_bounce_days(
        uow, [(digest, soft.day) for soft, _, digest in pairs],
        window_days=SOFT_BOUNCE_WINDOW.days,
    )  # fmt: skip
    often: dict[UUID, list[tuple[str, bytes]]] = {}
    for (soft, kind, digest), n in zip(pairs, days, strict=True):
        if n >= SOFT_BOUNCE_DAYS:
            often.setdefault(soft.report_id, []).append((kind, digest))
    suppressed = {s.report_id: s for s in work.soft if s.report_id in often}
    for report_id, soft in suppressed.items():
        work.suppress.append(suppression.Request(often[report_id], "email", ANY,
                                                 SuppressionReason.SOFT_BOUNCE,
                                                 f"report:{report_id}", soft.profile_id))  # fmt: skip
    note = (f"; soft bounces on {SOFT_BOUNCE_DAYS} days within {SOFT_BOUNCE_WINDOW.days}: "
            "address suppressed")  # fmt: skip
    work.done = [
        dataclasses.replace(d, outcome=d.outcome + note) if d.id in suppressed else d
        for d in work.done
    ]


def _change_delivery(
    uow: UnitOfWork, finding: m.Finding, target: m.Target, decision: m.Decision, work: _Work,
    *, report_id: UUID,
) -> None:  # fmt: skip
    new = m.DELIVERY_STATUS[decision.act]
    if not m.moves_delivery(target.status, new):
        return
    due = None
    if decision.act == m.Act.SOFT_BOUNCE and target.campaign_status == "SENDING":
        due = uow.clock.now() + SOFT_RETRY
    work.changes.append(repo.DeliveryChange(target.delivery_id, new,
                                            m.delivery_reason(finding, decision.act), due))  # fmt: skip
    action = {"BOUNCED": "delivery.bounced", "COMPLAINED": "delivery.complained",
              "DEFERRED": "delivery.deferred"}[new]  # fmt: skip
    work.audits.setdefault(action, []).append((target.delivery_id, {
        "report": str(report_id), "campaign": str(target.campaign_id),
        "status": finding.status, "class": finding.bounce_class,
    }))  # fmt: skip


async def _record_complaints(
    uow: UnitOfWork,
    complaints: Sequence[tuple[m.Target, tuple[str, ...]]],
    emails: dict[UUID, dict[str, str]],
) -> None:
    """Each complaint lands as an `Email Complained` event on the recipient's profile."""
    now = uow.clock.now()
    messages: list[Message] = []
    identified_by: dict[str, Identifier] = {}
    sent = await tracking_store.deliveries(uow, [t.delivery_id for t, _ in complaints])
    for target, addresses in complaints:
        mine = emails.get(target.profile_id, {})
        if not addresses or addresses[0] not in mine:
            continue
        # One event per delivery: a report received twice is one complaint.
        message_id = f"complaint-{target.delivery_id}"
        messages.append(Message(
            type="track", message_id=message_id, timestamp=now, received_at=now,
            name=COMPLAINED_EVENT,
            properties=message_about(sent[target.delivery_id]) if target.delivery_id in sent
            else {"campaign_id": str(target.campaign_id), "delivery_id": str(target.delivery_id)},
        ))  # fmt: skip
        identified_by[message_id] = Identifier("email", mine[addresses[0]])
    if messages:
        await ingest.ingest(uow, messages, identified_by=identified_by)
