"""Limits and error handling that every GraphQL document passes through."""

from collections.abc import Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

from api.graphql.connection import MAX_PAGE_SIZE
from api.graphql.read_only import ReadOnlyQueries
from api.settings import Settings
from domain.errors import DomainError


def _selection_cost(
    selection_set: SelectionSetNode | None, context: ValidationContext, seen: frozenset[str]
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            multiplier = 1
            for argument in selection.arguments or ():
                if argument.name.value == "first":
                    value = argument.value
                    # A variable could be anything up to the cap, so assume the cap.
                    multiplier = (
                        max(1, min(int(value.value), MAX_PAGE_SIZE))
                        if isinstance(value, IntValueNode)
                        else MAX_PAGE_SIZE
                    )
            total += 1 + multiplier * _selection_cost(selection.selection_set, context, seen)
        elif isinstance(selection, InlineFragmentNode):
            total += _selection_cost(selection.selection_set, context, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = context.get_fragment(name)
            if fragment is not None and name not in seen:
                total += _selection_cost(fragment.selection_set, context, seen | {name})
    return total


def cost_limit_rule(max_cost: int) -> type[ValidationRule]:
    class CostLimit(ValidationRule):
        """Reject documents whose estimated cost (fields times page sizes) is too high."""

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            cost = _selection_cost(node.selection_set, self.context, frozenset())
            if cost > max_cost:
                self.report_error(
                    GraphQLError(
                        f"query cost {cost} exceeds the limit of {max_cost}",
                        node,
                        extensions={"code": "QUERY_TOO_COSTLY"},
                    )
                )

    return CostLimit


def _should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, DomainError)


def extensions(settings: Settings) -> list[Any]:
    # The rules are built once, so every request validates with the same rule
    # classes: that is what lets the validation cache below hit. Parsing and
    # validating a document again costs more than running it, and every rule
    # depends only on the document.
    rules: list[type[ASTValidationRule]] = [
        depth_validator(settings.graphql_max_depth, None),
        alias_validator(settings.graphql_max_aliases),
        cost_limit_rule(settings.graphql_max_cost),
    ]
    if settings.production:
        rules.append(NoSchemaIntrospectionCustomRule)
    return [
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: AddValidationRules(rules),
        ErrorCodes,
        ReadOnlyQueries,
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        *([lambda: MaskErrors(should_mask_error=_should_mask)] if settings.production else []),
    ]


class ErrorCodes(SchemaExtension):
    """Give every expected error a stable `code` extension."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in (getattr(result, "errors", None) or []) if result else []:
            original = error.original_error
            if isinstance(original, DomainError):
                error.extensions = {**(error.extensions or {}), "code": original.code}
            elif error.extensions is None or "code" not in error.extensions:
                code = "INTERNAL" if original is not None else "GRAPHQL_VALIDATION_FAILED"
                error.extensions = {**(error.extensions or {}), "code": code}
