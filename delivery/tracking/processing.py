"""Hits and sending outcomes turned into profile events, engagement and counters.

A worker claims a workspace's unprocessed hits in the order they arrived,
judges each (a person, or a machine: `machines.py`), and in one transaction
marks them, updates each message's engagement (the first human open and
click make the unique counts), adds the counter deltas by hour, and stores
`Email Opened` / `Email Clicked` on the recipient's profile through ingest,
so that segments and journeys see them. A machine's hit is kept, flagged with
its reason, in `tracking_hits` and the machine counts, but is no event of the
person's. A click is also an open when the message had none: the images
were off.

The sending outcomes queued by the trigger on `deliveries` become
`Email Delivered` and `Email Bounced` on the delivery's profile; they change
nothing of it, so they take the short path (`cdp.server_events`). An event
names the campaign (or the journey and its step), the variant, and the
delivery.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from cdp import ingest, queries, server_events, traits
from cdp.model import Identifier, Message
from delivery.tracking import machines
from delivery.tracking import repository as repo
from domain.uow import UnitOfWork

OPENED, CLICKED = "Email Opened", "Email Clicked"
DELIVERED, BOUNCED, COMPLAINED = "Email Delivered", "Email Bounced", "Email Complained"
traits.not_activity(DELIVERED, BOUNCED, COMPLAINED)
BATCH = 2_000
# Beyond the rules' own windows: the API's hit writers commit within tens of milliseconds.
SETTLE_MARGIN = timedelta(seconds=1)


def hour(at: datetime) -> datetime:
    """The UTC hour `at` falls in, as the counters are kept."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class _Counts:
    """Counter deltas keyed by (campaign, variant, hour)."""

    by_key: dict[tuple[UUID, str, datetime], dict[str, int | Decimal]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    def add(self, sent: repo.Sent, at: datetime, name: str, n: int = 1) -> None:
        counts = self.by_key[(sent.campaign_id, sent.variant, hour(at))]
        counts[name] = counts.get(name, 0) + n

    def deltas(self) -> list[repo.Delta]:
        return [repo.Delta(c, v, b, counts) for (c, v, b), counts in sorted(self.by_key.items())]


def _count(hit: repo.PendingHit, machine: bool, row: repo.Engagement, sent: repo.Sent,
           counts: _Counts) -> None:  # fmt: skip
    """Add one judged hit to its message's engagement and to the counters."""
    if machine:
        name = "machine_opens" if hit.kind == "open" else "machine_clicks"
        setattr(row, name, getattr(row, name) + 1)
        counts.add(sent, hit.at, name)
        return
    if row.first_open_at is None:  # a click with images off is an open too
        row.first_open_at = hit.at
        counts.add(sent, hit.at, "opened")
    if hit.kind == "open":
        row.opens += 1
        counts.add(sent, hit.at, "opens")
        return
    row.clicks += 1
    counts.add(sent, hit.at, "clicks")
    if row.first_click_at is None:
        row.first_click_at = hit.at
        counts.add(sent, hit.at, "clicked")
    row.last_click_at = max(row.last_click_at or hit.at, hit.at)


def message_about(sent: repo.Sent) -> dict[str, Any]:
    """What every email event says about its message."""
    found: dict[str, Any] = {
        "delivery_id": str(sent.delivery_id), "campaign_id": str(sent.campaign_id),
        "campaign": sent.campaign_name, "variant": sent.variant or None,
    }  # fmt: skip
    if sent.journey_id is not None:
        found |= {"journey_id": str(sent.journey_id), "journey_step": sent.journey_step}
    return found


async def _store_events(
    uow: UnitOfWork, events: Sequence[tuple[Message, UUID]], emails: Mapping[UUID, str]
) -> None:
    messages = [m for m, pid in events if pid in emails]
    if messages:
        by = {m.message_id: Identifier("email", emails[pid]) for m, pid in events if pid in emails}
        await ingest.ingest(uow, messages, identified_by=by)


def _hit_event(hit: repo.PendingHit, sent: repo.Sent, verdict: machines.Verdict,
               now: datetime) -> Message:  # fmt: skip
    properties = message_about(sent)
    if verdict.proxy:
        properties["proxy"] = verdict.proxy
    if hit.kind == "click":
        properties |= {"url": hit.url, "link": hit.link}
    return Message(type="track", message_id=f"{hit.kind}-{hit.id}", timestamp=hit.at,
                   received_at=now, name=OPENED if hit.kind == "open" else CLICKED,
                   properties=properties)  # fmt: skip


def _as_hit(hit: repo.PendingHit) -> machines.Hit:
    kind = machines.HitKind.OPEN if hit.kind == "open" else machines.HitKind.CLICK
    return machines.Hit(kind, hit.delivery_id, hit.link, hit.at, hit.ip, hit.user_agent)


def settle(rules: machines.Rules) -> timedelta:
    """How long a hit waits before it is judged: until every hit that could make it a
    machine's (a cluster, a storm) has arrived, so that no verdict is taken back."""
    return max(rules.window, rules.too_soon) + SETTLE_MARGIN


async def process_hits(uow: UnitOfWork, rules: machines.Rules, limit: int = BATCH) -> int:
    """Judge and record a batch of the workspace's settled hits; how many were taken."""
    await repo.lock_workspace(uow)
    hits = await repo.claim_hits(uow, limit, before=uow.clock.now() - settle(rules))
    if not hits:
        return 0
    now = uow.clock.now()
    sent = await repo.deliveries(uow, [h.delivery_id for h in hits])
    gone = [h.id for h in hits if h.delivery_id not in sent]  # erased since it was sent
    hits = [h for h in hits if h.delivery_id in sent]
    if gone:
        uow.defer(repo.delete_hits(uow, gone))
    if not hits:
        return len(gone)
    since = min(h.at for h in hits) - max(rules.window, rules.too_soon)
    earlier: dict[UUID, list[machines.Hit]] = defaultdict(list)
    for old in await repo.recent_hits(uow, [h.delivery_id for h in hits], since):
        earlier[old.delivery_id].append(_as_hit(old))
    verdicts = machines.classify(rules, [_as_hit(h) for h in hits],
                                 {d: s.sent_at for d, s in sent.items()}, earlier)  # fmt: skip
    rows = await repo.engagement(uow, [h.delivery_id for h in hits])
    counts = _Counts()
    events: list[tuple[Message, UUID]] = []
    done: list[repo.Classified] = []
    for hit, verdict in sorted(zip(hits, verdicts, strict=True), key=lambda p: p[0].at):
        of = sent[hit.delivery_id]
        row = rows.setdefault(hit.delivery_id, repo.Engagement(hit.delivery_id))
        _count(hit, verdict.machine, row, of, counts)
        if not verdict.machine:  # a proxy's or a scanner's fetch says nothing of the person
            events.append((_hit_event(hit, of, verdict, now), of.profile_id))
        done.append(repo.Classified(hit.id, of.profile_id, verdict.machine, verdict.reason,
                                    verdict.proxy))  # fmt: skip
    await _store_events(
        uow, events, await queries.current_emails(uow, [s.profile_id for s in sent.values()])
    )
    uow.defer(
        repo.mark_hits(uow, done, now),
        repo.save_engagement(uow, list(rows.values()), sent),
        repo.add_deltas(uow, counts.deltas()),
    )
    return len(hits) + len(gone)


async def process_message_events(uow: UnitOfWork, limit: int = BATCH) -> int:
    """Turn a batch of queued sending outcomes into events on the profiles; how many."""
    await repo.lock_workspace(uow)
    queued = await repo.claim_message_events(uow, limit)
    if not queued:
        return 0
    now = uow.clock.now()
    sent = await repo.deliveries(uow, [e.delivery_id for e in queued])
    events: list[tuple[UUID, Message]] = []
    for item in queued:
        of = sent.get(item.delivery_id)
        if of is None:
            continue
        properties = message_about(of)
        if item.kind == "bounced" and of.reason:
            properties["reason"] = of.reason
        name = BOUNCED if item.kind == "bounced" else DELIVERED
        message = Message(
            type="track",
            message_id=f"{item.kind}-{item.delivery_id}",
            timestamp=item.at,
            received_at=now,
            name=name,
            properties=properties,
        )
        events.append((of.profile_id, message))
    await server_events.record(uow, events)
    return len(queued)
