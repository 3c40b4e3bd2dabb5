"""Consent rules without I/O: statuses, lawful bases, suppression scopes, the gate's decision."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
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
    # Soft bounces on several days in a row of weeks (delivery/deliverability).
    SOFT_BOUNCE = "soft_bounce"
    UNSUBSCRIBED = "unsubscribed"
    MANUAL = "manual"


# Only these may be lifted; the others record a person's or a mailbox's word.
LIFTABLE_REASONS = frozenset({SuppressionReason.RESTRICTED, SuppressionReason.MANUAL})

ANY = "*"
# A suppression scoped to MARKETING covers every purpose except the transactional ones,
# and a consent record for the MARKETING purpose stands for each of them that has no
# record of its own.
MARKETING = "marketing"
TRANSACTIONAL_PURPOSES = frozenset({"transactional"})

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_SOURCE_LENGTH = 200
MAX_USER_AGENT_LENGTH = 1000


def check_name(value: str, field: str) -> str:
    """Purposes and channels are short lower-case names such as `marketing` or `email`.

    `marketing` is an ordinary purpose name: its records stand for every
    non-transactional purpose that has none of its own (see `decide`).
    """
    cleaned = value.strip().lower()
    if not _NAME.match(cleaned):
        raise ValidationError(
            f"{field} must be 1-64 characters of a-z, 0-9, '_', '.' or '-'", field=field
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
class ConsentChange:
    """A validated change to record (`ledger.consent_change` checks it)."""

    purpose: str
    channel: str
    status: ConsentStatus
    lawful_basis: LawfulBasis
    source: str
    notice_version: str | None = None
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Notice:
    """The text a person is shown when asked for consent to a purpose."""

    purpose: str
    version: str
    text: str


@dataclass(frozen=True)
class AuditEntry:
    id: UUID
    at: datetime
    actor_kind: str
    actor_id: str
    action: str
    object_type: str
    object_id: str
    request_id: str | None
    details: dict[str, Any]


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


@dataclass(frozen=True)
class Deciding:
    """The records that bear on one purpose and channel: its own, and the `marketing` one."""

    own: ConsentRecord | None
    general: ConsentRecord | None

    @property
    def record(self) -> ConsentRecord | None:
        """The purpose's own record, unless a `marketing` refusal is more recent.

        A grant of `marketing` never overrides a purpose's own refusal; a
        withdrawal of `marketing` (an "unsubscribe from everything") overrides
        the purposes granted before it, and not those granted after.
        """
        own, general = self.own, self.general
        if own is None:
            return general
        if (
            own.status is ConsentStatus.GRANTED
            and general is not None
            and general.status is not ConsentStatus.GRANTED
            and general.recorded_at > own.recorded_at
        ):
            return general
        return own


def deciding(records: Iterable[ConsentRecord], *, channel: str, purpose: str) -> Deciding:
    """Pick the records that decide `purpose` on `channel` from a subject's current records.

    `records` holds the latest record per purpose and channel (`ledger.current`).
    Transactional purposes, and `marketing` itself, have no general record.
    """
    own = general = None
    general_applies = is_marketing(purpose) and purpose != MARKETING
    for record in records:
        if record.channel != channel:
            continue
        if record.purpose == purpose:
            own = record
        elif general_applies and record.purpose == MARKETING:
            general = record
    return Deciding(own=own, general=general)


def _resubscribed(entry: Suppression, purpose: str, records: Deciding) -> bool:
    """An unsubscribe gives way where the consent rule lets a record override the withdrawal.

    The entry stands for the withdrawal of its purpose, so a later grant of the
    purpose asked for overrides it. An entry for `marketing` asked about another
    purpose stands for the `marketing` withdrawal: a later grant of that purpose
    or of `marketing` overrides it, and an own refusal decides by itself (so it
    is the one named).
    """
    if entry.reason is not SuppressionReason.UNSUBSCRIBED:
        return False
    own, general = records.own, records.general
    if entry.purpose == MARKETING and purpose != MARKETING:
        if own is not None and (
            own.status is not ConsentStatus.GRANTED or own.recorded_at > entry.created_at
        ):
            return True
        return (
            general is not None
            and general.status is ConsentStatus.GRANTED
            and general.recorded_at > entry.created_at
        )
    return (
        own is not None
        and own.status is ConsentStatus.GRANTED
        and own.recorded_at > entry.created_at
    )


def decide(
    *,
    channel: str,
    purpose: str,
    records: Iterable[ConsentRecord],
    suppressions: Iterable[Suppression],
) -> Contactability:
    """The contact gate's rule, given a subject's current records and suppression entries.

    A suppression that covers the send refuses it (an unsubscribe only until
    the consent rule lets a grant override it, see `_resubscribed`). Otherwise
    the purpose's own latest record for the channel decides, unless a
    `marketing` refusal is more recent; a non-transactional purpose without
    one is decided by the latest `marketing` record for the channel. GRANTED allows, DENIED and WITHDRAWN refuse. With neither record,
    marketing is refused (consent is opt-in) and transactional mail is allowed.
    """
    found = deciding(records, channel=channel, purpose=purpose)
    covering = sorted(
        (
            s
            for s in suppressions
            if s.covers(channel, purpose) and not _resubscribed(s, purpose, found)
        ),
        key=lambda s: _REASON_ORDER.index(s.reason),
    )
    if covering:
        first = covering[0]
        return Contactability(
            allowed=False, reason=f"suppressed: {first.reason.value} (source: {first.source})"
        )
    consent = found.record
    if consent is not None:
        said = consent.status.value.lower()
        return Contactability(
            allowed=consent.status is ConsentStatus.GRANTED,
            reason=f"consent {said} ({consent.purpose}, source: {consent.source})",
        )
    if is_marketing(purpose):
        return Contactability(allowed=False, reason="no consent recorded")
    return Contactability(allowed=True, reason="transactional")
