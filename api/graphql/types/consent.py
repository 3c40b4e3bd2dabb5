"""Consent records, the contact gate's answer, and the consent a caller records, in GraphQL."""

from datetime import datetime

import strawberry

from api.graphql.types.identity import IdentifierInput
from consent import model as consent_model

# The domain's own enum, shown as it is: GraphQL uses the member names, which
# are also their values.
ConsentStatus = consent_model.ConsentStatus
strawberry.enum(ConsentStatus, name="ConsentStatus")


@strawberry.type
class Consent:
    purpose: str = strawberry.field(
        description=(
            'A purpose such as "newsletter". A "marketing" record also decides every '
            "non-transactional purpose that has no record of its own on the channel."
        )
    )
    channel: str
    status: ConsentStatus
    lawful_basis: str
    source: str
    notice_version: str | None
    recorded_at: datetime
    recorded_by: str = strawberry.field(description="The actor: token, OAuth client or link.")

    @classmethod
    def from_record(cls, record: consent_model.ConsentRecord) -> "Consent":
        return cls(
            purpose=record.purpose,
            channel=record.channel,
            status=record.status,
            lawful_basis=record.lawful_basis,
            source=record.source,
            notice_version=record.notice_version,
            recorded_at=record.recorded_at,
            recorded_by=record.actor,
        )


@strawberry.type
class Contactability:
    allowed: bool
    reason: str | None = strawberry.field(
        description=(
            "What decided: a suppression, the consent record that decided (its purpose, "
            'the one asked for or "marketing", and its source), or the default.'
        )
    )

    @classmethod
    def from_domain(cls, answer: consent_model.Contactability) -> "Contactability":
        return cls(allowed=answer.allowed, reason=answer.reason)


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
