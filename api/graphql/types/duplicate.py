"""Duplicate candidates in GraphQL, for a person to accept with mergeProfiles."""

import strawberry

from api.graphql.types.profile import ProfileNode


@strawberry.type(description="Two live profiles that are probably one person.")
class DuplicateCandidate:
    profile_a: ProfileNode
    profile_b: ProfileNode
    score: float = strawberry.field(description="0 to 1: how sure the match is.")
    reasons: list[str] = strawberry.field(
        description='The evidence, field by field, e.g. ["name 95", "phone equal"].'
    )
