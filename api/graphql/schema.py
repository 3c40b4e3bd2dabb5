"""The GraphQL schema."""

from collections.abc import Awaitable, Iterable
from typing import Annotated, cast

import strawberry
import structlog
from graphql import GraphQLError
from strawberry import relay
from strawberry.relay.types import GlobalIDValueError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, Info

from api.graphql import consent_queries, duplicates, profile_queries
from api.graphql.errors import is_internal
from api.graphql.hardening import extensions
from api.graphql.input_checks import check_root_fields
from api.graphql.mutations import consent as consent_mutations
from api.graphql.mutations import dsr as dsr_mutations
from api.graphql.mutations import merge_rules as merge_rule_mutations
from api.graphql.mutations import profiles as profile_mutations
from api.graphql.mutations.api_tokens import create_api_token, revoke_api_token
from api.graphql.mutations.oauth_clients import create_oauth_client, revoke_oauth_client
from api.graphql.node_ids import resolve_node_ids_directly
from api.graphql.permissions import requires
from api.graphql.scalars import SCALARS
from api.graphql.types.api_token import ApiTokenNode, OAuthClientNode
from api.graphql.types.consent import AuditEntryNode, DataSubjectRequestNode
from api.graphql.types.profile import EventNode, IdentityConflictNode, ProfileNode
from api.graphql.types.workspace import WorkspaceNode
from api.settings import Settings
from domain import workspaces

log = structlog.get_logger("cdp.graphql")


@strawberry.type
class Query:
    @strawberry.field(extensions=requires(), description="Fetches an object given its ID.")
    async def node(
        self,
        info: Info,
        id: Annotated[relay.GlobalID, strawberry.argument(description="The ID of the object.")],  # noqa: A002 - Relay's name
    ) -> relay.Node | None:
        try:
            node_type = id.resolve_type(info)
        except GlobalIDValueError:
            return None
        found = await cast(
            "Awaitable[Iterable[relay.Node | None]]",
            node_type.resolve_nodes(info=info, node_ids=[id.node_id], required=False),
        )
        return next(iter(found), None)

    profile = strawberry.field(resolver=profile_queries.profile)
    profiles = strawberry.field(resolver=profile_queries.profiles)
    identity_conflicts = strawberry.field(resolver=profile_queries.identity_conflicts)
    duplicate_candidates = strawberry.field(
        resolver=duplicates.duplicate_candidates,
        description=(
            "Pairs of live profiles that are probably one person, best first, with the "
            "evidence; accept one with mergeProfiles."
        ),
    )

    data_subject_request = strawberry.field(resolver=consent_queries.data_subject_request)
    data_subject_requests = strawberry.field(resolver=consent_queries.data_subject_requests)
    audit_log = strawberry.field(resolver=consent_queries.audit_log)
    suppressions = strawberry.field(resolver=consent_queries.suppressions)

    @strawberry.field(extensions=requires(), description="The caller's workspace.")
    async def workspace(self, info: Info) -> WorkspaceNode:
        uow = await info.context.uow()
        return WorkspaceNode.from_domain(await workspaces.current_workspace(uow))


@strawberry.type
class Mutation:
    create_api_token = strawberry.mutation(resolver=create_api_token)
    revoke_api_token = strawberry.mutation(resolver=revoke_api_token)
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
    set_event_retention = strawberry.mutation(resolver=dsr_mutations.set_event_retention)
    create_oauth_client = strawberry.mutation(
        resolver=create_oauth_client, name="createOAuthClient"
    )
    revoke_oauth_client = strawberry.mutation(
        resolver=revoke_oauth_client, name="revokeOAuthClient"
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
