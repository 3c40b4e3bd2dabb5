"""The `suppressions` field, for compliance staff."""

from strawberry.types import Info

from api.graphql.types.identity import IdentifierInput
from api.graphql.types.suppression import SuppressionEntry
from consent import suppression
from domain import subjects
from domain.credentials import CONSENT_READ


async def suppressions(info: Info, identifier: IdentifierInput) -> list[SuppressionEntry]:
    """Suppression entries for an identifier, found by its keyed hash (even after erasure)."""
    uow = await info.context.require(CONSENT_READ)
    kind, value = subjects.directory().normalize(identifier.kind, identifier.value)
    digest = info.context.state.keys.identifier_digest(uow.workspace_id, kind, value)
    return [SuppressionEntry.from_domain(e) for e in await suppression.entries(uow, [digest])]
