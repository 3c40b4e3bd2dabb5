"""The `duplicateCandidates` field, for a person to accept with mergeProfiles."""

from strawberry.types import Info

from api.graphql import connection
from api.graphql.types.duplicate import DuplicateCandidate
from api.graphql.types.profile import ProfileNode
from cdp import duplicates, queries
from domain.credentials import PROFILES_READ
from domain.errors import ValidationError


async def duplicate_candidates(
    info: Info, first: int | None = None, min_score: float = 0.8
) -> list[DuplicateCandidate]:
    """Likely duplicates, best first; never pairs the merge rules would refuse."""
    uow = await info.context.require(PROFILES_READ)
    limit = connection.page_size(first)
    if not 0.0 <= min_score <= 1.0:
        raise ValidationError("minScore must be between 0 and 1", field="minScore")
    found = await duplicates.duplicate_candidates(uow, limit=limit, min_score=min_score)
    wanted = sorted({c.profile_a for c in found} | {c.profile_b for c in found})
    rows = await queries.profiles_by_id(uow, wanted) if wanted else {}
    return [
        DuplicateCandidate(
            profile_a=ProfileNode.from_row(rows[c.profile_a]),
            profile_b=ProfileNode.from_row(rows[c.profile_b]),
            score=c.score,
            reasons=list(c.reasons),
        )
        for c in found
        if c.profile_a in rows and c.profile_b in rows
    ]
