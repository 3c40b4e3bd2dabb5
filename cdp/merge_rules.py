"""Per-workspace identity merge rules: how many values of a kind one profile may hold."""

from dataclasses import dataclass

from cdp import identifiers, repository
from cdp.profile_store import merge_rules
from cdp.resolution import DEFAULT_RULES, KindRule
from domain.errors import ValidationError
from domain.uow import UnitOfWork

MAX_PRIORITY = 1000


@dataclass(frozen=True)
class MergeRule:
    kind: str
    max_values: int | None
    priority: int
    is_default: bool


async def effective_rules(uow: UnitOfWork) -> list[MergeRule]:
    """Every kind with a rule: the workspace's own, and the defaults it has not replaced."""
    rules = await merge_rules(uow)
    return sorted(
        (
            MergeRule(kind, rule.max_values, rule.priority, DEFAULT_RULES.get(kind) == rule)
            for kind, rule in rules.kinds.items()
        ),
        key=lambda r: (r.priority, r.kind),
    )


async def set_rule(
    uow: UnitOfWork, kind: str, *, max_values: int | None, priority: int
) -> MergeRule:
    """Create or replace a kind's rule. It applies to merges from now on, not retroactively."""
    try:
        normalized = identifiers.normalize_kind(kind)
    except identifiers.IdentifierError as exc:
        raise ValidationError(str(exc), field="kind") from exc
    if max_values is not None and max_values < 1:
        raise ValidationError(
            "maxValues must be at least 1, or null for any number", field="maxValues"
        )
    if not 0 <= priority <= MAX_PRIORITY:
        raise ValidationError(f"priority must be between 0 and {MAX_PRIORITY}", field="priority")
    await repository.upsert_merge_rule(uow, normalized, max_values=max_values, priority=priority)
    rule = KindRule(max_values=max_values, priority=priority)
    return MergeRule(normalized, max_values, priority, DEFAULT_RULES.get(normalized) == rule)
