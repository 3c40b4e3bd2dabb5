"""Identity merge rules in GraphQL."""

import strawberry

from cdp import merge_rules


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
