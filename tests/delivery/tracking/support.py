"""A campaign with two subject variants, sent for real to an SMTP server on loopback."""

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any, cast
from uuid import UUID

from aiosmtpd.controller import Controller
from starlette.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from cdp.ingest import ingest
from cdp.model import Identifier, Message
from cdp.segments import services as segment_services
from consent import audit
from delivery.sending import campaigns, domains, pipeline, relay, throttle
from delivery.sending import policy as rules
from delivery.templates import services as template_services
from delivery.tracking import actors, machines, processing
from domain.clock import FrozenClock
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow, recompute_pending
from tests.conftest import new_workspace
from tests.support import factories
from tests.support.database import APP_ROLE, SECRET
from tests.support.jobs import as_worker
from tests.support.proxy import free_port

ACTOR = audit.Actor.system("test")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SALE = "https://shop.example/sale?utm=mail&x=1"
MJML = (
    "<mjml><mj-body><mj-section><mj-column>"
    "<mj-text>Hi {{ profile.traits.first_name }}</mj-text>"
    '<mj-button href="https://shop.example/sale?utm=mail&amp;x=1">Shop the sale</mj-button>'
    '<mj-text><a href="https://shop.example/about">About us</a></mj-text>'
    '<mj-text>{{ workspace.postal_address }} <a href="{{ unsubscribe_url }}">Unsubscribe</a>'
    "</mj-text></mj-column></mj-section></mj-body></mjml>"
)
TRACKED = re.compile(r'(?:href|src)="https?://[^/"]+(/t/[oc]/[A-Za-z0-9_-]+)"')


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.rcpt_tos[0], envelope.original_content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> EmailMessage:
        [data] = [data for to, data in self.messages if to == address]
        return cast("EmailMessage", message_from_bytes(data, policy=default))

    def tracked_paths(self, address: str) -> list[str]:
        """The message's open pixel and click links, as paths on the server."""
        part = self.to(address).get_body(("html",))
        assert part is not None
        return TRACKED.findall(part.get_content())


@contextmanager
def smtp_inbox() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield inbox, port
    finally:
        server.stop()


@dataclass
class Sent:
    database_url: str
    workspace_id: UUID
    campaign_id: UUID
    people: dict[str, UUID]  # email -> profile id
    clock: FrozenClock
    token: str

    def uow(self, work: Callable[[UnitOfWork], Any]) -> Any:
        return in_uow(self.database_url, self.workspace_id, work, clock=self.clock)

    def process(self) -> int:
        """Run the workspace's tracking job, as a worker would, once the hits so far have
        settled (the clock moves on by that much)."""
        rules = machines.Rules(machines.ProxyRanges.builtin())
        self.clock.advance(processing.settle(rules) + timedelta(milliseconds=500))
        return as_worker(self.database_url, lambda: actors.run_workspace(self.workspace_id),
                         clock=self.clock)  # fmt: skip

    def track(self, email: str, name: str, properties: dict[str, Any], message_id: str) -> None:
        at = self.clock.now()

        async def store(uow: UnitOfWork) -> None:
            await ingest(uow, [Message(type="track", message_id=message_id, timestamp=at,
                                       received_at=at, user_id=None, anonymous_id=None,
                                       name=name, properties=properties)],
                         identified_by={message_id: Identifier("email", email)})  # fmt: skip

        self.uow(store)

    def events(self, email: str, prefix: str = "Email ") -> list[Any]:
        async def read(uow: UnitOfWork) -> list[Any]:
            return await uow.fetch(
                "SELECT e.name, e.properties, e.timestamp FROM events e "
                "JOIN identities i ON i.workspace_id = e.workspace_id "
                " AND i.profile_id = e.profile_id "
                "WHERE e.workspace_id = %(ws)s AND i.kind = 'email' AND i.value = %(email)s "
                " AND e.name LIKE %(prefix)s ORDER BY e.timestamp, e.name",
                {"ws": uow.workspace_id, "email": email, "prefix": prefix + "%"},
            )

        return self.uow(read)  # type: ignore[no-any-return]


def send_campaign(database_url: str, port: int, *, people: int = 4) -> Sent:
    """A workspace whose `people` consenting profiles each get one message of a campaign with
    variants A and B, sent at T0 through the pipeline."""
    created = new_workspace(database_url, "tracking")
    ws = created.workspace.id
    clock = FrozenClock(T0)
    ids: dict[str, UUID] = {}
    with factories.seeding(database_url) as db:
        for i in range(people):
            email = f"p{i}@example.org"
            ids[email] = factories.profile(db, ws, traits={"first_name": f"P{i}"},
                                           identifiers=[("email", email)])  # fmt: skip
            factories.consent_record(db, ws, ids[email], recorded_at=T0 - timedelta(days=2))
        db.commit()

    async def setup(uow: UnitOfWork) -> UUID:
        segment = await segment_services.create(
            uow, ACTOR, segment_services.SegmentInput("everyone", None, {"identifier": "email"})
        )
        template = await template_services.create(
            uow, ACTOR, template_services.TemplateInput("sale", "The sale", MJML)
        )
        await domains.add(uow, ACTOR, SECRET, "shop.example", ed25519=False)
        await rules.set_policy(uow, ACTOR, rules.SendPolicy(sending_domain_rate=throttle.MAX_RATE,
                                                           recipient_domain_rate=throttle.MAX_RATE))  # fmt: skip
        campaign = await campaigns.create(uow, ACTOR, campaigns.CampaignInput(
            "sale", segment.id, template.template.id, "newsletter", "news@shop.example",
            variants=[campaigns.Variant("A", "Sale starts now", 0.5),
                      campaigns.Variant("B", "Our sale, {{ profile.traits.first_name }}", 0.5)],
        ))  # fmt: skip
        return campaign.id

    campaign_id = in_uow(database_url, ws, setup, clock=clock)
    recompute_pending(database_url, ws, clock=clock)
    sending = pipeline.Sending(
        SECRET, "https://cdp.example", relay.Pool(relay.RelaySettings("127.0.0.1", port))
    )

    async def work() -> None:
        engine = create_engine(database_url, role=APP_ROLE, pool_size=2)
        sessions = session_factory(engine)

        def units() -> UnitOfWork:
            return UnitOfWork(sessions, workspace_id=ws, clock=clock)

        try:
            async with units() as uow:
                await campaigns.send(uow, ACTOR, campaign_id)
                await campaigns.start(uow, campaign_id)
                await uow.commit()
            while await pipeline.send_batch(units, sending, campaign_id):
                pass
            await sending.pool.close()
        finally:
            await engine.dispose()

    asyncio.run(work())
    return Sent(database_url, ws, campaign_id, ids, clock, created.api_token)


@contextmanager
def tracking_app(settings: Settings, database_url: str, clock: FrozenClock,
                 client: tuple[str, int] = ("127.0.0.1", 50000)) -> Iterator[TestClient]:  # fmt: skip
    with TestClient(create_app(settings, database_url=database_url, clock=clock),
                    follow_redirects=False, client=client) as test_client:  # fmt: skip
        yield test_client


def stored(client: TestClient, count: int, timeout: float = 10.0) -> None:
    """Wait until the app's hit writer has committed `count` hits in all."""
    writer = client.app.state.hits  # type: ignore[attr-defined]
    end = time.monotonic() + timeout
    while writer.stored < count and time.monotonic() < end:
        time.sleep(0.01)
    assert writer.stored == count, (writer.stored, writer.held)
