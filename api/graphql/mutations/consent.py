"""recordConsent and publishConsentNotice."""

from strawberry.types import Info

from api.graphql.types.consent import Consent, ConsentInput
from api.graphql.types.input_error import InputError
from api.graphql.types.payloads import PublishConsentNoticePayload, RecordConsentPayload
from api.graphql.types.profile import ProfileNode
from cdp import consents, queries
from consent import audit, ledger
from domain.credentials import CONSENT_WRITE
from domain.errors import DomainError


async def record_consent(info: Info, input: ConsentInput) -> RecordConsentPayload:  # noqa: A002 - the contract's name
    """Append a consent record for the person with this identifier (the ledger never changes).

    WITHDRAWN and DENIED also suppress the person's address for the purpose and
    channel, so the decision holds if the profile is erased or re-created.
    """
    uow = await info.context.require(CONSENT_WRITE)
    actor = audit.Actor.of(await info.context.principal())
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
        recorded = await consents.record_consent(
            uow,
            info.context.state.keys,
            actor,
            kind=input.identifier.kind,
            value=input.identifier.value,
            change=change,
            double_opt_in=input.double_opt_in,
        )
    except DomainError as error:
        return RecordConsentPayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    token = recorded.confirmation_token
    rows = await queries.profiles_by_id(uow, [recorded.profile_id])
    return RecordConsentPayload(
        consent=Consent.from_record(recorded.record) if recorded.record else None,
        profile=ProfileNode.from_row(rows[recorded.profile_id])
        if recorded.profile_id in rows
        else None,
        confirmation_url=info.context.state.link(f"/consent/confirm/{token}") if token else None,
    )


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
