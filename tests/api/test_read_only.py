"""Query operations open read-only units of work; mutations do not."""

import pytest

from api.graphql.context import Context
from api.graphql.schema import build_schema
from api.settings import Settings


@pytest.mark.parametrize(
    ("document", "read_only"),
    [("{ __typename }", True), ("mutation { __typename }", False)],
    ids=["query", "mutation"],
)
def test_the_operation_type_decides_whether_the_transaction_is_read_only(document, read_only):
    context = Context(None, None, None)  # type: ignore[arg-type]
    context.read_only = not read_only
    result = build_schema(Settings()).execute_sync(document, context_value=context)
    assert result.errors is None
    assert context.read_only is read_only
