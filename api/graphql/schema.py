"""The GraphQL schema: its root fields, each resolved in queries/ or mutations/."""

import strawberry
import structlog
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api.graphql.errors import is_internal
from api.graphql.hardening import extensions
from api.graphql.input_checks import check_root_fields
from api.graphql.mutations import api_tokens as api_token_mutations
from api.graphql.mutations import campaigns as campaign_mutations
from api.graphql.mutations import consent as consent_mutations
from api.graphql.mutations import dsr as dsr_mutations
from api.graphql.mutations import journeys as journey_mutations
from api.graphql.mutations import merge_rules as merge_rule_mutations
from api.graphql.mutations import oauth_clients as oauth_client_mutations
from api.graphql.mutations import profiles as profile_mutations
from api.graphql.mutations import retention as retention_mutations
from api.graphql.mutations import segments as segment_mutations
from api.graphql.mutations import sending_domains as sending_domain_mutations
from api.graphql.mutations import templates as template_mutations
from api.graphql.node_ids import resolve_node_ids_directly
from api.graphql.permissions import requires
from api.graphql.queries import audit_log as audit_log_queries
from api.graphql.queries import campaigns as campaign_queries
from api.graphql.queries import deliverability as deliverability_queries
from api.graphql.queries import dsr as dsr_queries
from api.graphql.queries import duplicates as duplicate_queries
from api.graphql.queries import identity_conflicts as identity_conflict_queries
from api.graphql.queries import journeys as journey_queries
from api.graphql.queries import message_stats as message_stats_queries
from api.graphql.queries import node as node_queries
from api.graphql.queries import profiles as profile_queries
from api.graphql.queries import segments as segment_queries
from api.graphql.queries import sending_domains as sending_domain_queries
from api.graphql.queries import suppressions as suppression_queries
from api.graphql.queries import templates as template_queries
from api.graphql.queries import workspace as workspace_queries
from api.graphql.scalars import SCALARS
from api.graphql.types.api_token import ApiTokenNode
from api.graphql.types.audit import AuditEntryNode
from api.graphql.types.campaign import CampaignNode, DeliveryNode
from api.graphql.types.dsr import DataSubjectRequestNode
from api.graphql.types.event import EventNode
from api.graphql.types.identity import IdentityConflictNode
from api.graphql.types.journey import JourneyEnrollmentNode, JourneyNode
from api.graphql.types.oauth_client import OAuthClientNode
from api.graphql.types.profile import ProfileNode
from api.graphql.types.segment import SegmentNode
from api.graphql.types.sending_domain import SendingDomainNode
from api.graphql.types.template import TemplateNode, TemplateVersionNode
from api.graphql.types.workspace import WorkspaceNode
from api.settings import Settings

log = structlog.get_logger("cdp.graphql")


@strawberry.type
class Query:
    node = strawberry.field(
        resolver=node_queries.node,
        extensions=requires(),
        description="Fetches an object given its ID.",
    )

    profile = strawberry.field(resolver=profile_queries.profile)
    profiles = strawberry.field(resolver=profile_queries.profiles)
    identity_conflicts = strawberry.field(resolver=identity_conflict_queries.identity_conflicts)
    duplicate_candidates = strawberry.field(
        resolver=duplicate_queries.duplicate_candidates,
        description=(
            "Pairs of live profiles that are probably one person, best first, with the "
            "evidence; accept one with mergeProfiles."
        ),
    )

    data_subject_request = strawberry.field(resolver=dsr_queries.data_subject_request)
    data_subject_requests = strawberry.field(resolver=dsr_queries.data_subject_requests)
    audit_log = strawberry.field(resolver=audit_log_queries.audit_log)
    suppressions = strawberry.field(resolver=suppression_queries.suppressions)
    segment = strawberry.field(resolver=segment_queries.segment)
    segments = strawberry.field(resolver=segment_queries.segments)
    preview_segment = strawberry.field(resolver=segment_queries.preview_segment)
    segment_definition_schema = strawberry.field(resolver=segment_queries.segment_definition_schema)
    template = strawberry.field(resolver=template_queries.template)
    templates = strawberry.field(resolver=template_queries.templates)
    sending_domains = strawberry.field(resolver=sending_domain_queries.sending_domains)
    campaign = strawberry.field(resolver=campaign_queries.campaign)
    campaigns = strawberry.field(resolver=campaign_queries.campaigns)
    message_stats = strawberry.field(resolver=message_stats_queries.message_stats)
    deliverability_report = strawberry.field(resolver=deliverability_queries.deliverability_report)
    journey = strawberry.field(resolver=journey_queries.journey)
    journeys = strawberry.field(resolver=journey_queries.journeys)
    simulate_journey = strawberry.field(resolver=journey_queries.simulate_journey)
    journey_definition_schema = strawberry.field(resolver=journey_queries.journey_definition_schema)

    workspace = strawberry.field(
        resolver=workspace_queries.workspace,
        extensions=requires(),
        description="The caller's workspace.",
    )


@strawberry.type
class Mutation:
    create_api_token = strawberry.mutation(resolver=api_token_mutations.create_api_token)
    revoke_api_token = strawberry.mutation(resolver=api_token_mutations.revoke_api_token)
    upsert_profiles = strawberry.mutation(resolver=profile_mutations.upsert_profiles)
    merge_profiles = strawberry.mutation(resolver=profile_mutations.merge_profiles)
    set_merge_rule = strawberry.mutation(resolver=merge_rule_mutations.set_merge_rule)
    record_consent = strawberry.mutation(resolver=consent_mutations.record_consent)
    publish_consent_notice = strawberry.mutation(resolver=consent_mutations.publish_consent_notice)
    create_data_subject_request = strawberry.mutation(
        resolver=dsr_mutations.create_data_subject_request
    )
    extend_data_subject_request = strawberry.mutation(
        resolver=dsr_mutations.extend_data_subject_request
    )
    reject_data_subject_request = strawberry.mutation(
        resolver=dsr_mutations.reject_data_subject_request
    )
    lift_restriction = strawberry.mutation(resolver=dsr_mutations.lift_restriction)
    set_event_retention = strawberry.mutation(resolver=retention_mutations.set_event_retention)
    create_segment = strawberry.mutation(resolver=segment_mutations.create_segment)
    update_segment = strawberry.mutation(resolver=segment_mutations.update_segment)
    delete_segment = strawberry.mutation(resolver=segment_mutations.delete_segment)
    create_template = strawberry.mutation(resolver=template_mutations.create_template)
    update_template = strawberry.mutation(resolver=template_mutations.update_template)
    delete_template = strawberry.mutation(resolver=template_mutations.delete_template)
    set_postal_address = strawberry.mutation(resolver=template_mutations.set_postal_address)
    send_test_email = strawberry.mutation(resolver=template_mutations.send_test_email)
    add_sending_domain = strawberry.mutation(resolver=sending_domain_mutations.add_sending_domain)
    rotate_dkim_key = strawberry.mutation(resolver=sending_domain_mutations.rotate_dkim_key)
    verify_sending_domain = strawberry.mutation(
        resolver=sending_domain_mutations.verify_sending_domain
    )
    create_campaign = strawberry.mutation(resolver=campaign_mutations.create_campaign)
    send_campaign = strawberry.mutation(resolver=campaign_mutations.send_campaign)
    pause_campaign = strawberry.mutation(resolver=campaign_mutations.pause_campaign)
    resume_campaign = strawberry.mutation(resolver=campaign_mutations.resume_campaign)
    cancel_campaign = strawberry.mutation(resolver=campaign_mutations.cancel_campaign)
    set_send_policy = strawberry.mutation(resolver=campaign_mutations.set_send_policy)
    create_journey = strawberry.mutation(resolver=journey_mutations.create_journey)
    update_journey = strawberry.mutation(resolver=journey_mutations.update_journey)
    activate_journey = strawberry.mutation(resolver=journey_mutations.activate_journey)
    pause_journey = strawberry.mutation(resolver=journey_mutations.pause_journey)
    archive_journey = strawberry.mutation(resolver=journey_mutations.archive_journey)
    create_journey_from_recipe = strawberry.mutation(
        resolver=journey_mutations.create_journey_from_recipe
    )
    create_oauth_client = strawberry.mutation(
        resolver=oauth_client_mutations.create_oauth_client, name="createOAuthClient"
    )
    revoke_oauth_client = strawberry.mutation(
        resolver=oauth_client_mutations.revoke_oauth_client, name="revokeOAuthClient"
    )


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Bad documents, auth failures and other expected errors are the client's
        # business; only unexpected ones are logged, with their traceback.
        for error in errors:
            if is_internal(error):
                log.error(
                    "graphql.unexpected_error", error=str(error), exc_info=error.original_error
                )


def build_schema(settings: Settings) -> strawberry.Schema:
    schema = Schema(
        query=Query,
        mutation=Mutation,
        types=[
            WorkspaceNode,
            ApiTokenNode,
            OAuthClientNode,
            ProfileNode,
            SegmentNode,
            TemplateNode,
            TemplateVersionNode,
            SendingDomainNode,
            CampaignNode,
            DeliveryNode,
            JourneyNode,
            JourneyEnrollmentNode,
            EventNode,
            IdentityConflictNode,
            DataSubjectRequestNode,
            AuditEntryNode,
        ],
        extensions=extensions(settings),
        config=StrawberryConfig(
            disable_field_suggestions=settings.production,
            relay_max_results=100,
            scalar_map=SCALARS,
        ),
    )
    resolve_node_ids_directly(schema)
    check_root_fields(schema)
    return schema


def sdl(settings: Settings | None = None) -> str:
    return build_schema(settings or Settings()).as_str() + "\n"
