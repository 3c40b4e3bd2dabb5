"""Query operations run in read-only transactions.

GraphQL queries only read, and PostgreSQL then holds them to it: a write in a
query's transaction fails instead of being committed. A field that must write
while a query runs (an audited read) opens a unit of work of its own.
"""

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from api.graphql.context import Context


class ReadOnlyQueries(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            context.read_only = self.execution_context.operation_type is OperationType.QUERY
        yield
