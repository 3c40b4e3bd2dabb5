"""Consent recorded for a person named by an identifier.

It lives in cdp, above the consent context, because consent may come before
anything else about the person: the profile is then made here.
"""

from dataclasses import dataclass
from uuid import UUID

from cdp import profiles
from consent import audit, ledger, links
from consent.keys import Keys
from consent.model import ConsentChange, ConsentRecord, ConsentStatus
from domain import subjects
from domain.errors import ValidationError
from domain.uow import UnitOfWork


@dataclass(frozen=True)
class RecordedConsent:
    profile_id: UUID
    # None while a double opt-in grant waits for the person's confirmation.
    record: ConsentRecord | None
    # The signed token of that confirmation link, for a double opt-in grant.
    confirmation_token: str | None


async def _profile_for(uow: UnitOfWork, kind: str, value: str) -> UUID:
    """The profile holding the identifier; one is made when consent comes first."""
    directory = subjects.directory()
    kind, value = directory.normalize(kind, value)
    found = await directory.find(uow, kind, value)
    if found is not None and found.profile_id is not None:
        return found.profile_id
    result = await profiles.upsert_profiles(
        uow, [profiles.UpsertItem(identifiers=[(kind, value)])], trait_source="consent"
    )
    if result.errors:
        raise ValidationError(result.errors[0].message, field="identifier")
    return result.profile_ids[0]


async def record_consent(
    uow: UnitOfWork,
    keys: Keys,
    actor: audit.Actor,
    *,
    kind: str,
    value: str,
    change: ConsentChange,
    double_opt_in: bool = False,
) -> RecordedConsent:
    """Append a consent record for the person with this identifier (the ledger never changes).

    WITHDRAWN and DENIED also suppress the person's address for the purpose and
    channel, so the decision holds if the profile is erased or re-created. A
    double opt-in grant records nothing yet: it waits for the signed link.
    """
    if double_opt_in and change.status is not ConsentStatus.GRANTED:
        raise ValidationError("doubleOptIn applies to GRANTED only", field="doubleOptIn")
    await ledger.check_notice(uow, change.purpose, change.notice_version)
    profile_id = await _profile_for(uow, kind, value)
    if double_opt_in:
        token = await links.request_confirmation(uow, keys, actor, profile_id, change)
        return RecordedConsent(profile_id, None, token)
    if change.status is ConsentStatus.GRANTED:
        record = await ledger.append(uow, actor, profile_id, change)
    else:
        subject = await subjects.directory().of_profile(uow, profile_id)
        assert subject is not None  # noqa: S101 - the profile was just found or made
        record = await links.withdraw(uow, keys, subject, change, actor)
    return RecordedConsent(profile_id, record, None)
