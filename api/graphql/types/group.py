"""The accounts (Segment `group` calls) a profile belongs to, in GraphQL."""

from datetime import datetime

import strawberry

from api.graphql.scalars import JSON
from cdp import queries


@strawberry.type(description="An account the person belongs to, from Segment `group` calls.")
class ProfileGroup:
    group_id: str
    traits: JSON = strawberry.field(
        description="The group's traits; each keeps the value of the latest call by event time."
    )
    updated_at: datetime = strawberry.field(
        description="The event time of the latest group call for this profile and group."
    )

    @classmethod
    def from_row(cls, row: queries.GroupRow) -> "ProfileGroup":
        return cls(group_id=row.group_id, traits=JSON(row.traits), updated_at=row.updated_at)
