"""What a report about sent mail says, and what it makes us do; no I/O.

A report is a bounce (hard or soft), a complaint, a delay notice, an
unsubscribe sent to the List-Unsubscribe mailto, or nothing we act on (an
auto-reply, a success notice, other mail). It acts only on a delivery it is
matched to, and only on addresses of that delivery's recipient:
- the addresses it names, when they belong to the recipient;
- when it names none of them: for a complaint, every address of the
  recipient when it names none at all or when the signed VERP return path
  named the delivery (feedback loops redact the address, often by replacing
  it); for a bounce that names no address, the address the message went
  to, and only when the VERP return path named the delivery: a Message-ID
  can be guessed. (A complaint matched by its Message-ID alone can at worst
  stop a person's marketing mail.)
"""

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

HARD, SOFT, COMPLAINT, NONE = "hard", "soft", "complaint", "none"

# A delivery's status only moves up this order: a complaint after a bounce is
# still worth knowing, a late delay notice after a hard bounce is not.
_RANK = {"SENT": 1, "DEFERRED": 2, "BOUNCED": 3, "COMPLAINED": 4}


@dataclass(frozen=True)
class Finding:
    """What one report says, whether it came by SMTP or from a relay's webhook."""

    kind: str  # dsn, arf, autoreply, other; or a webhook's bounce, complaint, delivery, deferred
    bounce_class: str  # hard, soft, complaint, none
    recipients: tuple[str, ...] = ()
    status: str | None = None
    delayed: bool = False
    message_id: str | None = None
    return_paths: tuple[str, ...] = ()
    diagnostic: str | None = None
    unsubscribe: bool = False


@dataclass(frozen=True)
class Target:
    """The delivery a report is about, and how it was found."""

    delivery_id: UUID
    campaign_id: UUID
    profile_id: UUID  # the recipient as they are now (a merged-away profile's survivor)
    purpose: str
    status: str
    campaign_status: str
    by_verp: bool


class Act(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    SOFT_BOUNCE = "soft_bounce"
    DELAY = "delay"
    UNSUBSCRIBE = "unsubscribe"
    NOTHING = "nothing"


@dataclass(frozen=True)
class Decision:
    act: Act
    addresses: tuple[str, ...] = ()
    outcome: str = ""


# The status each act gives a delivery.
DELIVERY_STATUS = {Act.HARD_BOUNCE: "BOUNCED", Act.COMPLAINT: "COMPLAINED",
                   Act.SOFT_BOUNCE: "DEFERRED"}  # fmt: skip


def moves_delivery(current: str, new: str) -> bool:
    """Whether a delivery in `current` status takes `new`: never down, never from unsent."""
    return _RANK.get(new, 0) > _RANK.get(current, 0) > 0 or (current == new == "DEFERRED")


def _ours(finding: Finding, emails: frozenset[str], *, all_if_unnamed: bool) -> tuple[str, ...]:
    if not finding.recipients:
        return tuple(sorted(emails)) if all_if_unnamed else ()
    return tuple(sorted({a.lower() for a in finding.recipients} & emails))


def sent_to(emails: frozenset[str]) -> tuple[str, ...]:
    """The address a message to this recipient went to: the sending pipeline picks the first."""
    return (min(emails),) if emails else ()


def _not_ours(finding: Finding) -> str:
    if finding.recipients:
        return "it names no address of the delivery's recipient; nothing was suppressed"
    return (
        "it names no address, and no signed return path named the delivery; nothing was suppressed"
    )


def decide(finding: Finding, target: Target | None, emails: frozenset[str]) -> Decision:
    """What to do about a report; `emails` are the target recipient's addresses, lower case."""
    if target is None:
        return Decision(
            Act.NOTHING, outcome="matched no delivery of this workspace; nothing changed"
        )
    if finding.unsubscribe and target.by_verp:
        return Decision(Act.UNSUBSCRIBE, outcome=f"unsubscribed from {target.purpose} by mail")
    if finding.bounce_class == COMPLAINT:
        return _complaint(finding, target, emails)
    if finding.bounce_class in (HARD, SOFT):
        return _bounce(finding, target, emails)
    if finding.kind == "autoreply":
        return Decision(Act.NOTHING, outcome="an automatic reply; nothing to do")
    return Decision(Act.NOTHING, outcome=f"not a bounce or a complaint ({finding.kind})")


def _complaint(finding: Finding, target: Target, emails: frozenset[str]) -> Decision:
    found = _ours(finding, emails, all_if_unnamed=True)
    if not found and target.by_verp:
        # The signed return path names the delivery; the report's address was redacted.
        found = tuple(sorted(emails))
    if not found:
        return Decision(Act.NOTHING, outcome=_not_ours(finding))
    return Decision(Act.COMPLAINT, found, "complaint: marketing suppressed")


def _bounce(finding: Finding, target: Target, emails: frozenset[str]) -> Decision:
    if finding.bounce_class == SOFT and finding.delayed:
        return Decision(Act.DELAY, outcome="delay notice: the receiving side is still trying")
    found = _ours(finding, emails, all_if_unnamed=False)
    if not finding.recipients and target.by_verp:
        found = sent_to(emails)
    if not found:
        return Decision(Act.NOTHING, outcome=_not_ours(finding))
    code = f" {finding.status}" if finding.status else ""
    if finding.bounce_class == HARD:
        return Decision(Act.HARD_BOUNCE, found, f"hard bounce{code}: address suppressed")
    return Decision(Act.SOFT_BOUNCE, found, f"soft bounce{code}: delivery deferred")


def delivery_reason(finding: Finding, act: Act) -> str:
    """The reason a delivery shows for what happened to it."""
    words = {Act.HARD_BOUNCE: "hard bounce", Act.SOFT_BOUNCE: "soft bounce",
             Act.COMPLAINT: "complaint"}[act]  # fmt: skip
    parts = [words]
    if finding.status:
        parts.append(finding.status)
    text = " ".join(parts)
    if finding.diagnostic:
        text = f"{text}: {finding.diagnostic[:200]}"
    return text
