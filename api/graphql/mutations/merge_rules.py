"""setMergeRule."""

from strawberry.types import Info

from api.graphql.types.input_error import InputError
from api.graphql.types.merge_rule import MergeRuleInput, MergeRuleType
from api.graphql.types.payloads import SetMergeRulePayload
from cdp import merge_rules
from domain.credentials import ADMIN
from domain.errors import DomainError


async def set_merge_rule(info: Info, input: MergeRuleInput) -> SetMergeRulePayload:  # noqa: A002 - GraphQL's name
    """Create or replace how identifiers of one kind merge. Applies from now on."""
    uow = await info.context.require(ADMIN)
    try:
        rule = await merge_rules.set_rule(
            uow, input.kind, max_values=input.max_values, priority=input.priority
        )
    except DomainError as error:
        return SetMergeRulePayload(errors=[InputError.from_domain(error)])
    await uow.commit()
    return SetMergeRulePayload(rule=MergeRuleType.from_domain(rule))
