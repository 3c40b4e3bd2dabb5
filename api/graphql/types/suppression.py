"""Entries of the suppression list, in GraphQL."""

from datetime import datetime

import strawberry

from consent import model as consent_model


@strawberry.type
class SuppressionEntry:
    identifier_kind: str
    channel: str = strawberry.field(description='A channel, or "*" for every channel.')
    purpose: str = strawberry.field(
        description='A purpose, "marketing" for all but transactional, or "*" for all.'
    )
    reason: str
    source: str
    created_at: datetime

    @classmethod
    def from_domain(cls, entry: consent_model.Suppression) -> "SuppressionEntry":
        return cls(
            identifier_kind=entry.identifier_kind,
            channel=entry.channel,
            purpose=entry.purpose,
            reason=entry.reason.value,
            source=entry.source,
            created_at=entry.created_at,
        )
