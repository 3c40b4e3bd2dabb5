"""setMergeRule, and the MergeRule type."""

import strawberry
from strawberry.types import Info

from api.graphql.errors import InputError
from cdp import merge_rules
from domain.credentials import ADMIN
from domain.errors import DomainError


@strawberry.type(name="MergeRule")
class MergeRuleType:
    kind: str
    max_values: int | None = strawberry.field(
        description="How many values of this kind one profile may hold; null for any number."
    )
    priority: int = strawberry.field(description="Lower is stronger; the strongest decides.")
    is_default: bool

    @classmethod
    def from_domain(cls, rule: merge_rules.MergeRule) -> "MergeRuleType":
        return cls(
            kind=rule.kind,
            max_values=rule.max_values,
            priority=rule.priority,
            is_default=rule.is_default,
        )


@strawberry.input
class MergeRuleInput:
    kind: str
    max_values: int | None = None
    priority: int


@strawberry.type
class SetMergeRulePayload:
    rule: MergeRuleType | None = None
    errors: list[InputError] = strawberry.field(default_factory=list)


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
