"""Node ids resolved directly match what strawberry itself would answer."""

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql.node_ids import resolve_node_ids_directly


@strawberry.type
class Plain(relay.Node):
    code: relay.NodeID[str]


@strawberry.type
class Custom(relay.Node):
    code: relay.NodeID[str]

    @classmethod
    def resolve_id(cls, root: "Custom", *, info: Info) -> str:
        return root.code.upper()


@strawberry.type
class Query:
    @strawberry.field
    def plain(self) -> Plain:
        return Plain(code="a-1")

    @strawberry.field
    def custom(self) -> Custom:
        return Custom(code="b-2")


QUERY = "{ plain { id } custom { id } }"


def test_a_direct_id_is_the_global_id_strawberry_gives() -> None:
    expected = strawberry.Schema(query=Query).execute_sync(QUERY)
    schema = strawberry.Schema(query=Query)

    changed = resolve_node_ids_directly(schema)

    assert changed == ["Plain"]
    result = schema.execute_sync(QUERY)
    assert result.errors is None
    assert result.data == expected.data
    assert result.data == {
        "plain": {"id": str(relay.GlobalID("Plain", "a-1"))},
        "custom": {"id": str(relay.GlobalID("Custom", "B-2"))},
    }
