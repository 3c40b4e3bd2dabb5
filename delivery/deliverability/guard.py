"""The reputation guard: a campaign that draws too many complaints or hard bounces pauses itself.

Mailbox providers judge a sending domain by the complaints and bounces it
draws; a campaign to a stale or unwilling list can burn the domain within
hours. Once a campaign has sent enough messages for its rates to mean
something, it pauses itself when a rate passes its limit, with the reason
on the campaign and in the audit log. A person may resume it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from consent import audit
from delivery.deliverability import repository as repo
from delivery.sending import campaigns
from domain.uow import UnitOfWork

MIN_SENT = 1000
MAX_COMPLAINT_RATE = 0.003
MAX_HARD_BOUNCE_RATE = 0.05
ACTOR = audit.Actor.system("reputation-guard")


@dataclass(frozen=True)
class Verdict:
    pause: bool
    reason: str | None = None


def judge(counts: repo.CampaignCounts) -> Verdict:
    if counts.sent < MIN_SENT:
        return Verdict(pause=False)
    complaints = counts.complained / counts.sent
    bounces = counts.bounced / counts.sent
    if complaints > MAX_COMPLAINT_RATE:
        return Verdict(pause=True, reason=f"complaint rate {complaints:.2%} passed {MAX_COMPLAINT_RATE:.1%} "
                             f"({counts.complained} of {counts.sent} sent)")  # fmt: skip
    if bounces > MAX_HARD_BOUNCE_RATE:
        return Verdict(pause=True, reason=f"hard-bounce rate {bounces:.2%} passed {MAX_HARD_BOUNCE_RATE:.0%} "
                             f"({counts.bounced} of {counts.sent} sent)")  # fmt: skip
    return Verdict(pause=False)


async def check(uow: UnitOfWork, campaign_ids: Sequence[UUID]) -> list[UUID]:
    """Pause each of these campaigns still sending whose rates passed a limit; those paused."""
    if not campaign_ids:
        return []
    found = await campaigns.get_many(uow, list(campaign_ids))
    sending = [c for c in campaign_ids if c in found and found[c].status == campaigns.SENDING]
    counts = await repo.campaign_counts(uow, sending)
    paused = []
    for campaign_id in sending:
        verdict = judge(counts.get(campaign_id, repo.CampaignCounts(0, 0, 0)))
        if verdict.pause and await campaigns.hold(
            uow, ACTOR, campaign_id, reason=verdict.reason or "rates past their limits"
        ):
            paused.append(campaign_id)
    return paused
