"""What each mutation answers: its result, or the typed errors that explain why not.

Every payload has `errors`, and a payload can be built with `errors` alone
(api.graphql.input_checks answers a refused input so). They live together
because they join aggregates: recordConsent answers a consent and a profile.
"""

import strawberry
from strawberry import relay

from api.graphql.types.api_token import ApiTokenNode
from api.graphql.types.campaign import CampaignNode, SendPolicy
from api.graphql.types.consent import Consent
from api.graphql.types.dsr import DataSubjectRequestNode
from api.graphql.types.input_error import InputError
from api.graphql.types.journey import JourneyNode
from api.graphql.types.merge_rule import MergeRuleType
from api.graphql.types.oauth_client import OAuthClientNode
from api.graphql.types.profile import ProfileNode
from api.graphql.types.segment import SegmentNode
from api.graphql.types.sending_domain import SendingDomainNode
from api.graphql.types.template import TemplateNode


@strawberry.type
class CreateApiTokenPayload:
    api_token: ApiTokenNode | None = None
    token: str | None = strawberry.field(
        default=None, description="The secret. It is shown once and never stored."
    )
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class RevokeApiTokenPayload:
    api_token: ApiTokenNode | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class CreateOAuthClientPayload:
    client: OAuthClientNode | None = None
    client_secret: str | None = strawberry.field(
        default=None, description="The secret. It is shown once and never stored."
    )
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class RevokeOAuthClientPayload:
    client: OAuthClientNode | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class UpsertProfilesPayload:
    profiles: list[ProfileNode]
    errors: list[InputError]


@strawberry.type
class MergeProfilesPayload:
    profile: ProfileNode | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class SetMergeRulePayload:
    rule: MergeRuleType | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class RecordConsentPayload:
    consent: Consent | None = None
    profile: ProfileNode | None = None
    confirmation_url: str | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class PublishConsentNoticePayload:
    purpose: str | None = None
    version: str | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class CreateDataSubjectRequestPayload:
    data_subject_request: DataSubjectRequestNode | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class ExtendDataSubjectRequestPayload(CreateDataSubjectRequestPayload):
    pass


@strawberry.type
class RejectDataSubjectRequestPayload(CreateDataSubjectRequestPayload):
    pass


@strawberry.type
class LiftRestrictionPayload:
    lifted: int = strawberry.field(default=0, description="Suppression entries removed.")
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class SetEventRetentionPayload:
    days: int | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class SegmentPayload:
    segment: SegmentNode | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class DeleteSegmentPayload:
    deleted_id: relay.GlobalID | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class TemplatePayload:
    template: TemplateNode | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class DeleteTemplatePayload:
    deleted_id: relay.GlobalID | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class SetPostalAddressPayload:
    postal_address: str | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class SendTestEmailPayload:
    sent: bool = False
    message_id: str | None = strawberry.field(default=None, description="The Message-ID header.")
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class SendingDomainPayload:
    sending_domain: SendingDomainNode | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class CampaignPayload:
    campaign: CampaignNode | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class SendPolicyPayload:
    policy: SendPolicy | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


@strawberry.type
class JourneyPayload:
    journey: JourneyNode | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)
