"""recordConsent and publishConsentNotice."""

from uuid import UUID

import strawberry
from strawberry.types import Info

from api.graphql.errors import InputError
from api.graphql.profile_queries import IdentifierInput
from api.graphql.types.consent import Consent, ConsentStatus
from api.graphql.types.profile import ProfileNode
from cdp import profiles as profile_service
from cdp import queries
from consent import audit, ledger, links
from domain import subjects
from domain.credentials import CONSENT_WRITE
from domain.errors import DomainError, ValidationError
from domain.uow import UnitOfWork


@strawberry.input
class ConsentInput:
    identifier: IdentifierInput
    purpose: str
    channel: str
    status: ConsentStatus
    lawful_basis: str = strawberry.field(
        description=(
            "consent, contract, legal_obligation, vital_interests, public_task or "
            "legitimate_interests (GDPR Art. 6(1))."
        )
    )
    source: str = strawberry.field(description="Where the person said so, e.g. signup-form.")
    notice_version: str | None = strawberry.field(
        default=None, description="A published notice version for the purpose."
    )
    ip: str | None = None
    user_agent: str | None = None
    double_opt_in: bool = strawberry.field(
        default=False,
        description=(
            "With GRANTED: record nothing yet, and return a signed confirmationUrl that "
            "turns the grant into GRANTED when the person confirms (valid 7 days)."
        ),
    )


@strawberry.type
class RecordConsentPayload:
    consent: Consent | None = None
    profile: ProfileNode | None = None
    confirmation_url: str | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


async def _profile_for(uow: UnitOfWork, kind: str, value: str) -> UUID:
    """The profile holding the identifier; one is made when consent comes first."""
    directory = subjects.directory()
    kind, value = directory.normalize(kind, value)
    found = await directory.find(uow, kind, value)
    if found is not None and found.profile_id is not None:
        return found.profile_id
    result = await profile_service.upsert_profiles(
        uow, [profile_service.UpsertItem(identifiers=[(kind, value)])], trait_source="consent"
    )
    if result.errors:
        raise ValidationError(result.errors[0].message, field="identifier")
    return result.profile_ids[0]


async def record_consent(info: Info, input: ConsentInput) -> RecordConsentPayload:  # noqa: A002 - the contract's name
    """Append a consent record for the person with this identifier (the ledger never changes).

    WITHDRAWN and DENIED also suppress the person's address for the purpose and
    channel, so the decision holds if the profile is erased or re-created.
    """
    uow = await info.context.require(CONSENT_WRITE)
    actor = audit.Actor.of(await info.context.principal())
    keys = info.context.state.keys
    try:
        change = ledger.consent_change(
            purpose=input.purpose,
            channel=input.channel,
            status=input.status,
            lawful_basis=input.lawful_basis,
            source=input.source,
            notice_version=input.notice_version,
            ip=input.ip,
            user_agent=input.user_agent,
        )
        if input.double_opt_in and change.status is not ConsentStatus.GRANTED:
            raise ValidationError("doubleOptIn applies to GRANTED only", field="doubleOptIn")
        await ledger.check_notice(uow, change.purpose, change.notice_version)
        profile_id = await _profile_for(uow, input.identifier.kind, input.identifier.value)
        record = None
        confirmation_url = None
        if input.double_opt_in:
            token = await links.request_confirmation(uow, keys, actor, profile_id, change)
            confirmation_url = info.context.state.link(f"/consent/confirm/{token}")
        elif change.status is ConsentStatus.GRANTED:
            record = await ledger.append(uow, actor, profile_id, change)
        else:
            subject = await subjects.directory().of_profile(uow, profile_id)
            assert subject is not None  # noqa: S101 - the profile was just found or made
            record = await links.withdraw(uow, keys, subject, change, actor)
    except DomainError as error:
        return RecordConsentPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    rows = await queries.profiles_by_id(uow, [profile_id])
    return RecordConsentPayload(
        consent=Consent.from_record(record) if record else None,
        profile=ProfileNode.from_row(rows[profile_id]) if profile_id in rows else None,
        confirmation_url=confirmation_url,
    )


@strawberry.type
class PublishConsentNoticePayload:
    purpose: str | None = None
    version: str | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


async def publish_consent_notice(
    info: Info, purpose: str, version: str, text: str
) -> PublishConsentNoticePayload:
    """Store the text people are shown when asked for a purpose; a version never changes."""
    uow = await info.context.require(CONSENT_WRITE)
    actor = audit.Actor.of(await info.context.principal())
    try:
        await ledger.publish_notice(uow, actor, purpose=purpose, version=version, body=text)
    except DomainError as error:
        return PublishConsentNoticePayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return PublishConsentNoticePayload(purpose=purpose.strip().lower(), version=version.strip())
