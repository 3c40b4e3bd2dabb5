"""Limits and error handling that every GraphQL document passes through."""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
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
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)

from api.graphql.connection import MAX_PAGE_SIZE
from api.graphql.errors import BAD_USER_INPUT
from api.graphql.read_only import ReadOnlyQueries
from api.settings import Settings

FieldMeasure = Callable[[FieldNode, int | None], int]


class _Measure:
    """A number folded over a document's selections, each fragment measured once.

    A fragment's measure does not depend on where it is spread, so it is kept:
    a document whose fragments spread the next one twice would otherwise take
    time exponential in its length to measure. A fragment that is unknown or
    spreads itself (other rules report both) counts as empty.
    """

    def __init__(
        self,
        fragments: dict[str, FragmentDefinitionNode],
        field: FieldMeasure,
        combine: Callable[[Iterable[int]], int],
    ) -> None:
        self._fragments = fragments
        self._field = field
        self._combine = combine
        self._known: dict[str, int] = {}
        self._open: set[str] = set()

    def of(self, selection_set: SelectionSetNode) -> int:
        values = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                inner = (
                    None if selection.selection_set is None else self.of(selection.selection_set)
                )
                values.append(self._field(selection, inner))
            elif isinstance(selection, InlineFragmentNode):
                values.append(self.of(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                values.append(self._fragment(selection.name.value))
        return self._combine(values) if values else 0

    def _fragment(self, name: str) -> int:
        if name in self._known:
            return self._known[name]
        fragment = self._fragments.get(name)
        if fragment is None or name in self._open:
            return 0
        self._open.add(name)
        value = self.of(fragment.selection_set)
        self._open.discard(name)
        self._known[name] = value
        return value


def _fragments(context: ValidationContext) -> dict[str, FragmentDefinitionNode]:
    return {
        definition.name.value: definition
        for definition in context.document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


def _operations(context: ValidationContext) -> list[OperationDefinitionNode]:
    return [d for d in context.document.definitions if isinstance(d, OperationDefinitionNode)]


def _depth(_field: FieldNode, inner: int | None) -> int:
    # Every field counts, introspection's too (`__type { ofType { ... } }`):
    # the OWASP GraphQL cheat sheet's rule, which strawberry's limiter skips.
    return 0 if inner is None else 1 + inner


def depth_limit_rule(max_depth: int) -> type[ValidationRule]:
    class DepthLimit(ValidationRule):
        """Reject operations whose fields nest deeper than `max_depth`."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = _Measure(_fragments(context), _depth, max)
            for operation in _operations(context):
                if measure.of(operation.selection_set) > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    self.report_error(
                        GraphQLError(
                            f"'{name}' exceeds maximum operation depth of {max_depth}",
                            operation,
                            extensions={"code": "QUERY_TOO_DEEP"},
                        )
                    )

    return DepthLimit


def _aliases(field: FieldNode, inner: int | None) -> int:
    return (1 if field.alias else 0) + (inner or 0)


def alias_limit_rule(max_aliases: int) -> type[ValidationRule]:
    class AliasLimit(ValidationRule):
        """Reject documents with more than `max_aliases` aliased fields, spreads counted."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measure = _Measure(_fragments(context), _aliases, sum)
            total = sum(measure.of(o.selection_set) for o in _operations(context))
            if total > max_aliases:
                self.report_error(
                    GraphQLError(
                        f"{total} aliases found. Allowed: {max_aliases}",
                        extensions={"code": "TOO_MANY_ALIASES"},
                    )
                )

    return AliasLimit


def _cost(field: FieldNode, inner: int | None) -> int:
    multiplier = 1
    for argument in field.arguments or ():
        if argument.name.value == "first":
            value = argument.value
            # A variable could be anything up to the cap, so assume the cap.
            multiplier = (
                max(1, min(int(value.value), MAX_PAGE_SIZE))
                if isinstance(value, IntValueNode)
                else MAX_PAGE_SIZE
            )
    return 1 + multiplier * (inner or 0)


def cost_limit_rule(max_cost: int) -> type[ValidationRule]:
    class CostLimit(ValidationRule):
        """Reject documents whose estimated cost (fields times page sizes) is too high."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self._measure = _Measure(_fragments(context), _cost, sum)

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            cost = self._measure.of(node.selection_set)
            if cost > max_cost:
                self.report_error(
                    GraphQLError(
                        f"query cost {cost} exceeds the limit of {max_cost}",
                        node,
                        extensions={"code": "QUERY_TOO_COSTLY"},
                    )
                )

    return CostLimit


def extensions(settings: Settings) -> list[Any]:
    # The rules are built once, so every request validates with the same rule
    # classes: that is what lets the validation cache below hit. Parsing and
    # validating a document again costs more than running it, and every rule
    # depends only on the document.
    rules: list[type[ASTValidationRule]] = [
        depth_limit_rule(settings.graphql_max_depth),
        alias_limit_rule(settings.graphql_max_aliases),
        cost_limit_rule(settings.graphql_max_cost),
    ]
    if settings.production:
        rules.append(NoSchemaIntrospectionCustomRule)
    return [
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: AddValidationRules(rules),
        VariableErrors,
        ReadOnlyQueries,
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
    ]


class VariableErrors(SchemaExtension):
    """Mark the errors of refused variable values BAD_USER_INPUT.

    Every other error's code follows from the error itself (`error_code`);
    the view gives each its code as the answer goes out.
    """

    def on_execute(self) -> Iterator[None]:
        yield
        # Execution reports an error with no path only while it reads the
        # variables, before any field runs: the variables were refused.
        for error in getattr(self.execution_context.result, "errors", None) or ():
            if error.path is None:
                error.extensions = {**(error.extensions or {}), "code": BAD_USER_INPUT}
