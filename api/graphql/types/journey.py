"""Journeys in GraphQL: the journey, its enrollments and statistics, and the input."""

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.ids import local_id
from api.graphql.nodes import load_nodes
from api.graphql.scalars import JSON
from api.graphql.types.campaign import MessageStats
from delivery.journeys import engine, model, sends
from delivery.journeys import repository as journey_store
from delivery.journeys import services as journeys
from delivery.journeys.repository import EnrollmentRow, JourneyRow
from delivery.tracking import stats as tracking_stats
from delivery.tracking.stats import Counts
from domain.credentials import MESSAGES_READ

if TYPE_CHECKING:
    from api.graphql.types.profile import ProfileNode

Profile = Annotated["ProfileNode", strawberry.lazy("api.graphql.types.profile")]


@strawberry.enum
class JourneyStatus(Enum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ARCHIVED = "ARCHIVED"


@strawberry.enum
class JourneyRecipe(Enum):
    WELCOME = "WELCOME"
    ABANDONED_CART = "ABANDONED_CART"
    BROWSE_ABANDONMENT = "BROWSE_ABANDONMENT"
    POST_PURCHASE = "POST_PURCHASE"
    BIRTHDAY = "BIRTHDAY"
    WIN_BACK = "WIN_BACK"


@strawberry.type
class JourneyStepStats:
    step_id: str = strawberry.field(description="The step's id in the definition (stable).")
    kind: str = strawberry.field(description="wait, send, branch, split, waitFor or exit.")
    entered: int = strawberry.field(description="Entries that reached this step, every version.")
    active: int = strawberry.field(description="Profiles at this step now.")
    completed: int = strawberry.field(description="Entries that went past this step.")
    exited: int = strawberry.field(description="Profiles that left the journey at this step.")
    converted: int | None = strawberry.field(
        description="For a send step: converted entries that were sent its message."
    )
    messages: MessageStats | None = strawberry.field(
        description="For a send step: its messages, across the journey's versions."
    )


@strawberry.type
class JourneyStats:
    entered: int
    active: int
    completed: int
    exited: int
    converted: int
    messages: MessageStats


@strawberry.type(name="JourneyEnrollment")
class JourneyEnrollmentNode(relay.Node):
    id: relay.NodeID[str]
    version: int = strawberry.field(description="The version the profile entered with.")
    state: str = strawberry.field(description="ACTIVE, COMPLETED or EXITED.")
    step: str | None = strawberry.field(description="The id of the step the profile is at.")
    wake_at: datetime | None = strawberry.field(description="When the profile next moves on.")
    entered_at: datetime
    finished_at: datetime | None
    exit_reason: str | None
    converted_at: datetime | None
    row: strawberry.Private[EnrollmentRow]

    @classmethod
    def from_row(cls, row: EnrollmentRow) -> "JourneyEnrollmentNode":
        return cls(
            id=str(row.id), version=row.version, state=row.state, step=row.step,
            wake_at=row.wake_at if row.state == "ACTIVE" else None, entered_at=row.entered_at,
            finished_at=row.finished_at, exit_reason=row.exit_reason,
            converted_at=row.converted_at, row=row,
        )  # fmt: skip

    @strawberry.field
    async def profile(self, info: Info) -> Profile | None:
        from api.graphql.types.profile import ProfileNode  # noqa: PLC0415 - the types refer to each other

        [node] = await ProfileNode.resolve_nodes(info=info, node_ids=[str(self.row.profile_id)])
        return node

    @strawberry.field
    async def journey(self, info: Info) -> "JourneyNode | None":
        [node] = await JourneyNode.resolve_nodes(info=info, node_ids=[str(self.row.journey_id)])
        return node

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["JourneyEnrollmentNode | None"]:
        return await load_nodes(
            info, loader_name="journey_enrollment", node_ids=node_ids, scope=MESSAGES_READ,
            fetch=journey_store.enrollments_by_id, to_node=cls.from_row,
        )  # fmt: skip


@strawberry.type(name="Journey")
class JourneyNode(relay.Node):
    id: relay.NodeID[str]
    name: str
    status: JourneyStatus
    version: int = strawberry.field(description="The newest version: new entries take it.")
    activated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    row: strawberry.Private[JourneyRow]

    @classmethod
    def from_row(cls, row: JourneyRow) -> "JourneyNode":
        return cls(
            id=str(row.id), name=row.name, status=JourneyStatus(row.status), version=row.version,
            activated_at=row.activated_at, created_at=row.created_at, updated_at=row.updated_at,
            row=row,
        )  # fmt: skip

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["JourneyNode | None"]:
        return await load_nodes(
            info, loader_name="journey", node_ids=node_ids, scope=MESSAGES_READ,
            fetch=journey_store.get_many, to_node=cls.from_row,
        )  # fmt: skip

    @strawberry.field(description="The newest version's definition, every step with its id.")
    async def definition(self, info: Info) -> JSON:
        uow = await info.context.require(MESSAGES_READ)
        found: Any = await journeys.current_definition(uow, self.row)
        return found  # type: ignore[no-any-return]

    @strawberry.field
    async def stats(self, info: Info) -> JourneyStats:
        uow = await info.context.require(MESSAGES_READ)
        counts = await journey_store.counts(uow, self.row.id)
        messages = await tracking_stats.by_journey_step(uow, self.row.id)
        active, completed, exited = (counts.get(s, 0) for s in ("ACTIVE", "COMPLETED", "EXITED"))
        return JourneyStats(
            entered=active + completed + exited, active=active, completed=completed,
            exited=exited, converted=counts["converted"],
            messages=MessageStats.of(Counts.total(list(messages.values()))),
        )  # fmt: skip

    @strawberry.field(description="Per step of the newest version: where profiles are, and "
                                  "what each send step sent.")  # fmt: skip
    async def steps(self, info: Info) -> list[JourneyStepStats]:
        uow = await info.context.require(MESSAGES_READ)
        definition = journeys.parse(await journeys.current_definition(uow, self.row))
        at = await journey_store.counts_by_step(uow, self.row.id)
        arrived = await journey_store.arrivals_by_step(uow, self.row.id)
        messages = await tracking_stats.by_journey_step(uow, self.row.id)
        converted = await sends.conversions(uow, self.row.id)
        found = []
        for step in model.walk(definition.steps):
            active, exited = at.get((step.id, "ACTIVE"), 0), at.get((step.id, "EXITED"), 0)
            entered = arrived.get(step.id, 0)
            is_send = isinstance(step, model.Send)
            found.append(JourneyStepStats(
                step_id=step.id, kind=engine.kind(step), entered=entered, active=active,
                completed=max(entered - active - exited, 0), exited=exited,
                converted=converted.get(step.id, 0) if is_send else None,
                messages=MessageStats.of(messages.get(step.id, Counts())) if is_send else None,
            ))  # fmt: skip
        return found

    @strawberry.field(description="Who entered, newest version or not, in a stable order.")
    async def enrollments(
        self, info: Info, first: int | None = None, after: str | None = None,
        profile_id: relay.GlobalID | None = None,
    ) -> relay.Connection[JourneyEnrollmentNode]:  # fmt: skip
        uow = await info.context.require(MESSAGES_READ)
        limit = connection.page_size(first)
        cursor = connection.decode_cursor(after)
        profiles = None if profile_id is None else [local_id(profile_id, "Profile", "profileId")]
        rows = await journey_store.enrollment_page(uow, journey_id=self.row.id,
                                                   profile_ids=profiles, after=cursor,
                                                   limit=limit + 1)  # fmt: skip
        return connection.build(rows, limit, key=lambda r: r.id, after=cursor,
                                to_node=JourneyEnrollmentNode.from_row)  # fmt: skip


@strawberry.input
class JourneyInput:
    name: str
    definition: JSON

    def to_service(self) -> journeys.JourneyInput:
        return journeys.JourneyInput(name=self.name, definition=self.definition)
