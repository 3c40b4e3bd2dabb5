"""A workspace ready to run journeys: a sending domain, a template, people; and the job bodies."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from cdp.ingest import ingest
from cdp.model import Message
from consent import audit
from delivery.journeys import actors, repository, services, timers
from delivery.sending import domains, pipeline, relay, throttle
from delivery.sending import policy as rules
from delivery.sending import repository as sending_store
from delivery.templates import services as template_services
from domain.clock import Clock, FrozenClock
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow
from tests.conftest import new_workspace
from tests.support import factories
from tests.support.database import SECRET
from tests.support.jobs import as_worker

ACTOR = audit.Actor.system("test")
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MJML = (
    "<mjml><mj-body><mj-section><mj-column>"
    "<mj-text>Hi {{ profile.traits.first_name }}, you left {{ event.properties.sku }}</mj-text>"
    '<mj-text>{{ workspace.postal_address }} <a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>'
    "</mj-column></mj-section></mj-body></mjml>"
)


def cart_definition(template_id: UUID, *, wait: dict[str, int] | None = None,
                    reentry: str = "never") -> dict[str, Any]:  # fmt: skip
    return {
        "trigger": {"event": "Product Added"},
        "exitOn": [{"event": "Order Completed"}],
        "goal": {"event": "Order Completed", "withinDays": 7},
        "reentry": reentry,
        "steps": [
            {"wait": wait or {"hours": 1}},
            {"send": {"templateId": str(template_id), "purpose": "marketing",
                      "fromEmail": "hello@shop.example"}},
        ],
    }  # fmt: skip


@dataclass
class Shop:
    database_url: str
    workspace_id: UUID
    template_id: UUID
    people: dict[str, UUID]
    clock: FrozenClock

    def uow(self, work: Callable[[UnitOfWork], Any]) -> Any:
        return in_uow(self.database_url, self.workspace_id, work, clock=self.clock)

    def journey(
        self, definition: dict[str, Any], *, name: str = "cart", activate: bool = True
    ) -> UUID:
        async def make(uow: UnitOfWork) -> UUID:
            row = await services.create(uow, ACTOR, services.JourneyInput(name, definition))
            if activate:
                await services.activate(uow, ACTOR, row.id)
            return row.id

        return self.uow(make)  # type: ignore[no-any-return]

    def track(self, person: str | None, name: str, props: dict[str, Any] | None = None, *,
              message_id: str | None = None, anonymous_id: str | None = None) -> None:  # fmt: skip
        self.send_batch([self.message(person, name, props, message_id=message_id,
                                      anonymous_id=anonymous_id)])  # fmt: skip

    def message(self, person: str | None, name: str, props: dict[str, Any] | None = None, *,
                message_id: str | None = None, anonymous_id: str | None = None) -> Message:  # fmt: skip
        return Message(
            type="track", message_id=message_id or uuid.uuid4().hex, timestamp=self.clock.now(),
            received_at=self.clock.now(), user_id=person, anonymous_id=anonymous_id,
            previous_id=None, group_id=None, name=name, traits={}, properties=props or {},
            context={},
        )  # fmt: skip

    def send_batch(self, messages: list[Message]) -> None:
        """Ingest the messages in one batch (one transaction), as /v1/batch does."""

        async def send(uow: UnitOfWork) -> None:
            await ingest(uow, messages)

        self.uow(send)

    def identify(self, person: str, traits: dict[str, Any], *,
                 anonymous_id: str | None = None) -> None:  # fmt: skip
        self.send_batch([Message(
            type="identify", message_id=uuid.uuid4().hex, timestamp=self.clock.now(),
            received_at=self.clock.now(), user_id=person, anonymous_id=anonymous_id,
            previous_id=None, group_id=None, name=None, traits=traits, properties={}, context={},
        )])  # fmt: skip

    def run_inbox(self) -> int:
        return as_worker(self.database_url, lambda: actors.run_inbox(self.workspace_id),
                         clock=self.clock)  # fmt: skip

    def run_due(self) -> timers.Advanced:
        """Move this workspace's due enrollments, as the worker's tick does for every one."""
        return as_worker(self.database_url, lambda: actors.run_workspace(self.workspace_id),
                         clock=self.clock)  # fmt: skip

    def enrollments(self, journey_id: UUID) -> list[repository.EnrollmentRow]:
        async def read(uow: UnitOfWork) -> list[repository.EnrollmentRow]:
            return await repository.enrollment_page(uow, journey_id=journey_id, profile_ids=None,
                                                    after=None, limit=1000)  # fmt: skip

        return self.uow(read)  # type: ignore[no-any-return]

    def arrivals(self, journey_id: UUID) -> dict[str, int]:
        async def read(uow: UnitOfWork) -> dict[str, int]:
            return await repository.arrivals_by_step(uow, journey_id)

        return self.uow(read)  # type: ignore[no-any-return]

    def by_person(self, journey_id: UUID) -> dict[str, list[repository.EnrollmentRow]]:
        names = {pid: name for name, pid in self.people.items()}
        found: dict[str, list[repository.EnrollmentRow]] = {}
        for row in self.enrollments(journey_id):
            found.setdefault(names[row.profile_id], []).append(row)
        return found

    def send_all(self, journey_id: UUID, port: int) -> None:
        """Send every queued message of the journey's steps through the pipeline."""
        sending = pipeline.Sending(
            SECRET, "https://cdp.example", relay.Pool(relay.RelaySettings("127.0.0.1", port))
        )

        async def work() -> None:
            from domain import jobs

            runtime = jobs.runtime()
            async with runtime.uow(self.workspace_id) as uow:
                steps = await sending_store.step_campaigns(uow, [journey_id])
            for campaign_id in steps.values():
                for _ in range(20):
                    tally = await pipeline.send_batch(lambda: runtime.uow(self.workspace_id),
                                                      sending, campaign_id)  # fmt: skip
                    if not tally:
                        break
            await sending.pool.close()

        as_worker(self.database_url, work, clock=self.clock)

    def deliveries(self, journey_id: UUID) -> list[Any]:
        async def read(uow: UnitOfWork) -> list[Any]:
            return await uow.fetch(
                "SELECT d.profile_id, d.status, d.reason, d.enrollment_id, c.journey_step "
                "FROM deliveries d JOIN campaigns c ON c.workspace_id = d.workspace_id "
                " AND c.id = d.campaign_id WHERE d.workspace_id = %(ws)s "
                " AND c.journey_id = %(j)s ORDER BY d.updated_at",
                {"ws": uow.workspace_id, "j": journey_id},
            )

        return self.uow(read)  # type: ignore[no-any-return]


def shop(database_url: str, people: dict[str, bool], *, clock: Clock | None = None,
         name: str = "shop", traits: dict[str, dict[str, Any]] | None = None) -> Shop:  # fmt: skip
    """A workspace with a sending domain, a cart template and people by user id, each with an
    email address and, where `people` says True, a marketing consent."""
    ws = new_workspace(database_url, name).workspace.id
    frozen = clock if isinstance(clock, FrozenClock) else FrozenClock(T0)
    ids: dict[str, UUID] = {}
    with factories.seeding(database_url) as db:
        for person, consents in people.items():
            pid = factories.profile(db, ws, traits={"first_name": person.title(),
                                                    **(traits or {}).get(person, {})},
                                    identifiers=[("email", f"{person}@example.org"),
                                                 ("user_id", person)])  # fmt: skip
            if consents:
                factories.consent_record(db, ws, pid, purpose="marketing",
                                         recorded_at=frozen.now() - timedelta(days=1))  # fmt: skip
            ids[person] = pid
        db.commit()

    async def setup(uow: UnitOfWork) -> UUID:
        template = await template_services.create(
            uow, ACTOR, template_services.TemplateInput("cart", "Your cart, {{ profile.traits.first_name }}", MJML)
        )  # fmt: skip
        await domains.add(uow, ACTOR, SECRET, "shop.example", ed25519=False)
        await rules.set_policy(uow, ACTOR, rules.SendPolicy(
            sending_domain_rate=throttle.MAX_RATE, recipient_domain_rate=throttle.MAX_RATE))  # fmt: skip
        return template.template.id

    template_id = in_uow(database_url, ws, setup, clock=frozen)
    return Shop(database_url, ws, template_id, ids, frozen)
