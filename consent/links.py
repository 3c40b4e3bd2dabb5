"""What signed links let a person do without logging in.

- one-click unsubscribe (RFC 8058): withdraw one purpose on one channel;
- the preference centre: see and change every purpose;
- double opt-in: confirm a pending grant before it counts.

A link carries its workspace and profile, signed; a merged-away profile
resolves to its survivor, and an erased one has nothing left to change.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from consent import audit, ledger, suppression
from consent.keys import CONFIRM, PREFERENCES, UNSUBSCRIBE, Keys, LinkError
from consent.model import (
    ConsentChange,
    ConsentRecord,
    ConsentStatus,
    LawfulBasis,
    SuppressionReason,
    check_name,
)
from consent.repository import confirmations
from domain import subjects
from domain.ids import new_id
from domain.personal_data import Subject
from domain.uow import UnitOfWork

ONE_CLICK_SOURCE = "one-click-unsubscribe"
PREFERENCE_SOURCE = "preference-centre"
CONFIRMATION_TTL = timedelta(days=7)
# Suppression is by address: these kinds are what a channel sends to.
CHANNEL_KINDS = {"email": ("email",), "sms": ("phone",), "whatsapp": ("phone",)}


@dataclass(frozen=True)
class LinkTarget:
    workspace_id: UUID
    profile_id: UUID
    channel: str | None = None
    purpose: str | None = None


@dataclass(frozen=True)
class Origin:
    """Where a person's click came from, kept as evidence."""

    ip: str | None = None
    user_agent: str | None = None


def unsubscribe_token(
    keys: Keys, workspace_id: UUID, profile_id: UUID, *, channel: str, purpose: str
) -> str:
    return keys.sign_forever(
        UNSUBSCRIBE,
        {
            "w": str(workspace_id),
            "p": str(profile_id),
            "c": check_name(channel, "channel"),
            "u": check_name(purpose, "purpose"),
        },
    )


def preferences_token(keys: Keys, workspace_id: UUID, profile_id: UUID) -> str:
    return keys.sign_forever(PREFERENCES, {"w": str(workspace_id), "p": str(profile_id)})


def _target(payload: dict[str, Any], *, scoped: bool) -> LinkTarget:
    try:
        target = LinkTarget(
            UUID(payload["w"]),
            UUID(payload["p"]),
            str(payload["c"]) if scoped else None,
            str(payload["u"]) if scoped else None,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise LinkError("this link is not valid") from exc
    return target


def read_unsubscribe(keys: Keys, token: str) -> LinkTarget:
    return _target(keys.verify(UNSUBSCRIBE, token), scoped=True)


def read_preferences(keys: Keys, token: str) -> LinkTarget:
    return _target(keys.verify(PREFERENCES, token), scoped=False)


def _channel_digests(keys: Keys, subject: Subject, channel: str) -> list[tuple[str, bytes]]:
    kinds = CHANNEL_KINDS.get(channel)
    return [
        (kind, keys.identifier_digest(subject.workspace_id, kind, value))
        for kind, value in subject.identifiers
        if kinds is None or kind in kinds
    ]


async def withdraw(
    uow: UnitOfWork,
    keys: Keys,
    subject: Subject,
    change: ConsentChange,
    actor: audit.Actor,
) -> ConsentRecord:
    """Record a withdrawal (or denial) and suppress the channel's addresses for the purpose.

    The suppression is what keeps the person's word if the profile is erased
    or re-created by a later sync.
    """
    profile_id = subject.profile_id
    if profile_id is None:
        raise LinkError("nothing is held about this person any more")
    record = await ledger.append(uow, actor, profile_id, change)
    await suppression.add(
        uow,
        actor,
        digests=_channel_digests(keys, subject, change.channel),
        channel=change.channel,
        purpose=change.purpose,
        reason=SuppressionReason.UNSUBSCRIBED,
        source=change.source,
        object_id=profile_id,
    )
    return record


def _by_link(
    *,
    purpose: str,
    channel: str,
    status: ConsentStatus,
    source: str,
    origin: Origin,
    notice_version: str | None = None,
) -> ConsentChange:
    return ledger.consent_change(
        purpose=purpose,
        channel=channel,
        status=status,
        lawful_basis=LawfulBasis.CONSENT.value,
        source=source,
        notice_version=notice_version,
        ip=origin.ip,
        user_agent=origin.user_agent,
    )


async def one_click_unsubscribe(
    uow: UnitOfWork,
    keys: Keys,
    target: LinkTarget,
    origin: Origin,
    *,
    source: str = ONE_CLICK_SOURCE,
) -> ConsentRecord | None:
    """RFC 8058. None when the person was erased: there is nobody left to mail."""
    subject = await subjects.directory().of_profile(uow, target.profile_id)
    if subject is None or target.channel is None or target.purpose is None:
        return None
    change = _by_link(
        purpose=target.purpose,
        channel=target.channel,
        status=ConsentStatus.WITHDRAWN,
        source=source,
        origin=origin,
    )
    return await withdraw(uow, keys, subject, change, audit.Actor.subject_link(source))


async def set_preference(
    uow: UnitOfWork,
    keys: Keys,
    subject: Subject,
    *,
    channel: str,
    purpose: str,
    granted: bool,
    origin: Origin,
) -> ConsentRecord:
    actor = audit.Actor.subject_link(PREFERENCE_SOURCE)
    status = ConsentStatus.GRANTED if granted else ConsentStatus.WITHDRAWN
    # A grant records the notice the page showed for the purpose.
    notice = (await ledger.latest_notices(uow)).get(purpose.strip().lower()) if granted else None
    change = _by_link(
        purpose=purpose,
        channel=channel,
        status=status,
        source=PREFERENCE_SOURCE,
        origin=origin,
        notice_version=notice.version if notice else None,
    )
    if not granted:
        return await withdraw(uow, keys, subject, change, actor)
    if subject.profile_id is None:
        raise LinkError("nothing is held about this person any more")
    # The gate lets this later grant override an earlier unsubscribe entry.
    return await ledger.append(uow, actor, subject.profile_id, change)


async def request_confirmation(
    uow: UnitOfWork, keys: Keys, actor: audit.Actor, profile_id: UUID, change: ConsentChange
) -> str:
    """Store a pending grant; only the signed link's confirmation turns it into GRANTED."""
    confirmation_id = new_id()
    now = uow.clock.now()
    await confirmations.insert_pending(
        uow,
        confirmation_id,
        profile_id,
        change,
        actor=str(actor),
        at=now,
        expires_at=now + CONFIRMATION_TTL,
    )
    await audit.record(
        uow,
        actor,
        "consent.confirmation_requested",
        object_type="profile",
        object_id=profile_id,
        details={
            "confirmation_id": str(confirmation_id),
            "purpose": change.purpose,
            "channel": change.channel,
        },
    )
    return keys.sign(CONFIRM, {"w": str(uow.workspace_id), "c": str(confirmation_id)})


def read_confirmation(keys: Keys, token: str) -> tuple[UUID, UUID]:
    payload = keys.verify(CONFIRM, token, max_age=int(CONFIRMATION_TTL.total_seconds()))
    try:
        return UUID(payload["w"]), UUID(payload["c"])
    except (KeyError, ValueError, TypeError) as exc:
        raise LinkError("this link is not valid") from exc


async def confirm(uow: UnitOfWork, confirmation_id: UUID, origin: Origin) -> ConsentRecord:
    """Turn a pending grant into GRANTED; confirming twice gives the same record."""
    pending = await confirmations.lock(uow, confirmation_id)
    if pending is None:
        raise LinkError("this confirmation is no longer pending")
    subject = await subjects.directory().of_profile(uow, pending.profile_id)
    if subject is None or subject.profile_id is None:
        raise LinkError("nothing is held about this person any more")
    if pending.confirmed_at is not None:
        records = await ledger.current(uow, subject.profile_ids)
        found = next(
            (r for r in records if (r.purpose, r.channel) == (pending.purpose, pending.channel)),
            None,
        )
        if found is not None:
            return found
    if pending.expires_at <= uow.clock.now():
        raise LinkError("this link has expired")
    await confirmations.mark_confirmed(uow, confirmation_id, uow.clock.now())
    return await ledger.append(
        uow,
        audit.Actor.subject_link("double-opt-in"),
        subject.profile_id,
        ledger.consent_change(
            purpose=pending.purpose,
            channel=pending.channel,
            status=ConsentStatus.GRANTED,
            lawful_basis=pending.lawful_basis,
            source=f"{pending.source} (double opt-in confirmed)",
            notice_version=pending.notice_version,
            ip=origin.ip,
            user_agent=origin.user_agent,
        ),
    )
