"""Segments in GraphQL: the node, its members and explanations, the input and the preview."""

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql import connection, loaders
from api.graphql.ids import local_id
from api.graphql.nodes import load_nodes
from api.graphql.scalars import JSON
from cdp.segments import repository as segment_store
from cdp.segments.repository import SegmentRow
from domain.credentials import SEGMENTS_READ

if TYPE_CHECKING:
    from api.graphql.types.profile import ProfileNode

Profile = Annotated["ProfileNode", strawberry.lazy("api.graphql.types.profile")]


@strawberry.enum
class SegmentState(Enum):
    COMPUTING = "COMPUTING"
    READY = "READY"


@strawberry.type
class SegmentExplanation:
    member: bool = strawberry.field(
        description="Whether the profile matches the definition now (evaluated afresh)."
    )
    is_member: bool = strawberry.field(
        description="Whether the profile is in the segment's stored membership."
    )
    tree: JSON = strawberry.field(
        description=(
            'The definition, each node with "matched" and what was seen ("actual"); '
            'all/any/not nodes name the child that decided in "decidedBy".'
        )
    )


@strawberry.type(name="Segment")
class SegmentNode(relay.Node):
    id: relay.NodeID[str]
    name: str
    description: str | None
    definition: JSON
    version: int = strawberry.field(description="Grows by one with each edit of the definition.")
    computed_at: datetime | None = strawberry.field(
        description="When the last full evaluation finished."
    )
    created_at: datetime
    updated_at: datetime
    row: strawberry.Private[SegmentRow]

    @classmethod
    def from_row(cls, row: SegmentRow) -> "SegmentNode":
        return cls(
            id=str(row.id),
            name=row.name,
            description=row.description,
            definition=JSON(row.definition),
            version=row.version,
            computed_at=row.computed_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["SegmentNode | None"]:
        return await load_nodes(
            info,
            loader_name="segment",
            node_ids=node_ids,
            scope=SEGMENTS_READ,
            fetch=segment_store.get_many,
            to_node=cls.from_row,
        )

    @strawberry.field(
        description=(
            "COMPUTING while the definition's full evaluation runs (members are those of "
            "the previous one), READY once size and members are exact."
        )
    )
    def state(self) -> SegmentState:
        if self.row.computed_version < self.row.version:
            return SegmentState.COMPUTING
        return SegmentState.READY

    @strawberry.field(description="How many profiles are members now.")
    async def size(self, info: Info) -> int:
        uow = await info.context.uow()
        return await loaders.segment_sizes(info, uow).load(self.row.id)

    @strawberry.field(description="The members, in a stable order.")
    async def members(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[Profile]:
        from api.graphql.types.profile import ProfileNode  # noqa: PLC0415 - the types refer to each other

        uow = await info.context.require(SEGMENTS_READ)
        limit = connection.page_size(first)
        cursor = connection.decode_cursor(after)
        ids = await loaders.segment_members(info, uow).load((self.row.id, cursor, limit + 1))
        nodes = await ProfileNode.resolve_nodes(info=info, node_ids=[str(i) for i in ids])
        rows = [(pid, node) for pid, node in zip(ids, nodes, strict=True) if node is not None]
        return connection.build(
            rows, limit, key=lambda r: r[0], to_node=lambda r: r[1], after=cursor
        )

    @strawberry.field(
        description="Why a profile is or is not a member: the definition evaluated for it now."
    )
    async def explain(self, info: Info, profile_id: relay.GlobalID) -> SegmentExplanation:
        uow = await info.context.require(SEGMENTS_READ)
        asked = local_id(profile_id, "Profile", "profileId")
        found = await loaders.segment_explanations(info, uow).load((self.row.id, asked))
        return SegmentExplanation(
            member=found.matched, is_member=found.is_member, tree=JSON(found.tree)
        )


@strawberry.type
class SegmentPreview:
    size: int
    sample: list[Profile]


@strawberry.type
class SegmentMembershipChange:
    segment: SegmentNode
    entered: bool
    at: datetime


@strawberry.input
class SegmentInput:
    name: str
    description: str | None = None
    definition: JSON = strawberry.field(
        description="A rule tree; segmentDefinitionSchema gives its JSON Schema."
    )
