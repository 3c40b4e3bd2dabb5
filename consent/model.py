"""Consent rules without I/O: statuses, lawful bases, suppression scopes, the gate's decision."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from domain.errors import ValidationError


class ConsentStatus(StrEnum):
    GRANTED = "GRANTED"
    DENIED = "DENIED"
    WITHDRAWN = "WITHDRAWN"


class LawfulBasis(StrEnum):
    """GDPR Art. 6(1) (a) to (f)."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


class SuppressionReason(StrEnum):
    """Why an identifier is not mailed; when several apply, the first listed is named."""

    ERASED = "erased"
    RESTRICTED = "restricted"
    OBJECTED = "objected"
    COMPLAINT = "complaint"
    HARD_BOUNCE = "hard_bounce"
    UNSUBSCRIBED = "unsubscribed"
    MANUAL = "manual"


# Only these may be lifted; the others record a person's or a mailbox's word.
LIFTABLE_REASONS = frozenset({SuppressionReason.RESTRICTED, SuppressionReason.MANUAL})

ANY = "*"
# A suppression scoped to MARKETING covers every purpose except the transactional ones.
MARKETING = "marketing"
TRANSACTIONAL_PURPOSES = frozenset({"transactional"})

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_SOURCE_LENGTH = 200
MAX_USER_AGENT_LENGTH = 1000


def check_name(value: str, field: str) -> str:
    """Purposes and channels are short lower-case names such as `newsletter` or `email`."""
    cleaned = value.strip().lower()
    if not _NAME.match(cleaned) or cleaned in {ANY, MARKETING}:
        raise ValidationError(
            f"{field} must be 1-64 characters of a-z, 0-9, '_', '.' or '-' (and not {MARKETING!r})",
            field=field,
        )
    return cleaned


def check_lawful_basis(value: str) -> LawfulBasis:
    try:
        return LawfulBasis(value.strip().lower())
    except ValueError:
        allowed = ", ".join(b.value for b in LawfulBasis)
        raise ValidationError(
            f"lawfulBasis must be one of: {allowed}", field="lawfulBasis"
        ) from None


def check_source(value: str) -> str:
    cleaned = value.strip()
    if not cleaned or len(cleaned) > MAX_SOURCE_LENGTH:
        raise ValidationError(f"source must be 1 to {MAX_SOURCE_LENGTH} characters", field="source")
    return cleaned


def is_marketing(purpose: str) -> bool:
    return purpose not in TRANSACTIONAL_PURPOSES


@dataclass(frozen=True)
class ConsentRecord:
    id: UUID
    profile_id: UUID
    purpose: str
    channel: str
    status: ConsentStatus
    lawful_basis: str
    source: str
    notice_version: str | None
    actor: str
    recorded_at: datetime


@dataclass(frozen=True)
class Suppression:
    identifier_kind: str
    channel: str
    purpose: str
    reason: SuppressionReason
    source: str
    created_at: datetime

    def covers(self, channel: str, purpose: str) -> bool:
        if self.channel not in {ANY, channel}:
            return False
        if self.purpose == MARKETING:
            return is_marketing(purpose)
        return self.purpose in {ANY, purpose}


@dataclass(frozen=True)
class Contactability:
    allowed: bool
    reason: str | None = None


_REASON_ORDER = list(SuppressionReason)


def _resubscribed(entry: Suppression, consent: ConsentRecord | None) -> bool:
    """An unsubscribe gives way to a later, explicit grant of the same purpose."""
    return (
        entry.reason is SuppressionReason.UNSUBSCRIBED
        and consent is not None
        and consent.status is ConsentStatus.GRANTED
        and consent.recorded_at > entry.created_at
    )


def decide(
    *,
    channel: str,
    purpose: str,
    consent: ConsentRecord | None,
    suppressions: Iterable[Suppression],
) -> Contactability:
    """The contact gate's rule.

    A suppression that covers the send refuses it (an unsubscribe only until a
    later grant of that purpose and channel). Otherwise the latest consent
    record for the purpose and channel decides: GRANTED allows, DENIED and
    WITHDRAWN refuse. With no record, marketing is refused (consent is opt-in)
    and transactional mail is allowed.
    """
    covering = sorted(
        (s for s in suppressions if s.covers(channel, purpose) and not _resubscribed(s, consent)),
        key=lambda s: _REASON_ORDER.index(s.reason),
    )
    if covering:
        first = covering[0]
        return Contactability(
            allowed=False, reason=f"suppressed: {first.reason.value} (source: {first.source})"
        )
    if consent is not None:
        if consent.status is ConsentStatus.GRANTED:
            return Contactability(
                allowed=True, reason=f"consent granted (source: {consent.source})"
            )
        return Contactability(
            allowed=False,
            reason=f"consent {consent.status.value.lower()} (source: {consent.source})",
        )
    if is_marketing(purpose):
        return Contactability(allowed=False, reason="no consent recorded")
    return Contactability(allowed=True, reason="transactional")
