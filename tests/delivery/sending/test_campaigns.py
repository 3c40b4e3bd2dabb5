"""A campaign end to end, against PostgreSQL and a real SMTP server on loopback (aiosmtpd)."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from typing import Any, TypeVar
from uuid import UUID

import dkim as dkimpy
import pytest
from aiosmtpd.controller import Controller

from cdp.segments import services as segment_services
from consent import audit
from delivery.sending import campaigns, domains, pipeline, relay, throttle
from delivery.sending import policy as rules
from delivery.templates import services as template_services
from domain.db import create_engine, session_factory
from domain.uow import UnitOfWork
from tests.cdp.segments.support import in_uow, recompute_pending
from tests.conftest import new_workspace
from tests.support import factories
from tests.support.database import APP_ROLE, SECRET
from tests.support.proxy import free_port

T = TypeVar("T")
ACTOR = audit.Actor.system("test")
MJML = (
    "<mjml><mj-body><mj-section><mj-column>"
    '<mj-text>Hi {{ profile.traits.first_name | default: "there" }}</mj-text>'
    '<mj-text>{{ workspace.postal_address }} <a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>'
    "</mj-column></mj-section></mj-body></mjml>"
)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def data(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 Message accepted for delivery"

    handle_DATA = data  # noqa: N815 - aiosmtpd's hook name


@pytest.fixture
def smtp():
    inbox = _Inbox()
    port = free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    yield inbox, port
    server.stop()


def _run(
    database_url: str, ws: UUID, work: Callable[[Callable[[], UnitOfWork]], Awaitable[T]]
) -> T:
    async def main() -> T:
        engine = create_engine(database_url, role=APP_ROLE, pool_size=2)
        sessions = session_factory(engine)
        try:
            return await work(lambda: UnitOfWork(sessions, workspace_id=ws))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _audience(database_url: str, ws: UUID) -> dict[str, list[UUID]]:
    groups: dict[str, list[UUID]] = {"granted": [], "withdrawn": [], "never": []}
    earlier = datetime.now(UTC) - timedelta(days=2)
    with factories.seeding(database_url) as db:
        for i in range(60):
            kind = "granted" if i < 45 else "withdrawn" if i < 50 else "never"
            pid = factories.profile(db, ws, traits={"first_name": f"P{i}"},
                                    identifiers=[("email", f"p{i}@example.org")])  # fmt: skip
            if kind != "never":
                factories.consent_record(db, ws, pid, recorded_at=earlier)
            if kind == "withdrawn":
                factories.consent_record(db, ws, pid, status="WITHDRAWN")
            groups[kind].append(pid)
        db.commit()
    return groups


def _campaign(database_url: str, ws: UUID, *, mjml: str = MJML, **options: Any) -> UUID:
    async def setup(uow: UnitOfWork) -> UUID:
        segment = await segment_services.create(
            uow, ACTOR, segment_services.SegmentInput("everyone", None, {"identifier": "email"})
        )
        template = await template_services.create(
            uow,
            ACTOR,
            template_services.TemplateInput("hello", "Hello {{ profile.traits.first_name }}", mjml),
        )
        await domains.add(uow, ACTOR, SECRET, "shop.example", ed25519=False)
        # Unthrottled: these tests are about what is sent, test_throttle.py about how fast.
        await rules.set_policy(uow, ACTOR, rules.SendPolicy(sending_domain_rate=throttle.MAX_RATE,
                                                           recipient_domain_rate=throttle.MAX_RATE))  # fmt: skip
        campaign = await campaigns.create(
            uow, ACTOR,
            campaigns.CampaignInput("first", segment.id, template.template.id, "newsletter",
                                    "news@shop.example", from_name="Shop", **options),
        )  # fmt: skip
        return campaign.id

    campaign_id = in_uow(database_url, ws, setup)
    recompute_pending(database_url, ws)
    return campaign_id


def _send_all(database_url: str, ws: UUID, campaign_id: UUID, port: int) -> dict[str, int]:
    sending = pipeline.Sending(
        SECRET, "https://cdp.example", relay.Pool(relay.RelaySettings("127.0.0.1", port))
    )

    async def work(units: Callable[[], UnitOfWork]) -> dict[str, int]:
        async with units() as uow:
            await campaigns.send(uow, ACTOR, campaign_id)
            await campaigns.start(uow, campaign_id)
            await uow.commit()
        total: dict[str, int] = {}
        for _ in range(100):
            tally = await pipeline.send_batch(units, sending, campaign_id)
            if not tally:
                break
            for key, n in tally.items():
                total[key] = total.get(key, 0) + n
        await sending.pool.close()
        return total

    return _run(database_url, ws, work)


def _deliveries(database_url: str, ws: UUID, campaign_id: UUID) -> list[Any]:
    async def read(uow: UnitOfWork) -> list[Any]:
        return await uow.fetch(
            "SELECT profile_id, status, reason, variant, holdout, message_id FROM deliveries "
            "WHERE workspace_id = %(ws)s AND campaign_id = %(c)s",
            {"ws": ws, "c": campaign_id},
        )

    return in_uow(database_url, ws, read)


def test_a_campaign_sends_one_signed_message_to_each_contactable_member_and_skips_the_rest(
    database_url, smtp
):
    inbox, port = smtp
    ws = new_workspace(database_url, "campaign").workspace.id
    groups = _audience(database_url, ws)
    campaign_id = _campaign(database_url, ws)
    tally = _send_all(database_url, ws, campaign_id, port)
    assert tally == {"SENT": 45, "SKIPPED": 15}

    recipients = sorted(to for _, [to], _ in inbox.messages)
    assert recipients == sorted(f"p{i}@example.org" for i in range(45))
    rows = _deliveries(database_url, ws, campaign_id)
    by_status: dict[str, set[UUID]] = {}
    for row in rows:
        by_status.setdefault(row.status, set()).add(row.profile_id)
    assert by_status["SENT"] == set(groups["granted"])
    assert by_status["SKIPPED"] == set(groups["withdrawn"]) | set(groups["never"])
    reasons = {row.profile_id: row.reason for row in rows if row.status == "SKIPPED"}
    assert all(reasons[p] for p in by_status["SKIPPED"])
    assert {reasons[p] for p in groups["withdrawn"]} != {reasons[p] for p in groups["never"]}

    async def status(uow: UnitOfWork) -> tuple[str, dict[str, int]]:
        campaign = await campaigns.get(uow, campaign_id)
        return campaign.status, (await campaigns.counts(uow, [campaign_id]))[campaign_id]

    final, counts = in_uow(database_url, ws, status)
    assert final == "SENT"
    assert counts == {"SENT": 45, "SKIPPED": 15}

    async def dns_record(uow: UnitOfWork) -> str:
        [domain] = await domains.list_all(uow)
        key = domain.current("rsa-sha256")
        assert key is not None
        return f"v=DKIM1; k=rsa; p={key.public_key}"

    record = in_uow(database_url, ws, dns_record).encode()
    for sender, _, data in inbox.messages:
        assert sender.endswith("@bounces.shop.example")
        assert dkimpy.verify(data, dnsfunc=lambda name, timeout=5: record)
        parsed = message_from_bytes(data, policy=default)
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        signed = parsed["DKIM-Signature"].split("h=")[1].split(";")[0].split(":")
        assert {"list-unsubscribe", "list-unsubscribe-post"} <= set(signed)


def test_a_template_that_shows_the_popular_products_gets_them_and_one_that_does_not_sends_too(
    database_url, smtp
):
    inbox, port = smtp
    shows = MJML.replace(
        "Hi ", "{% for p in recommendations.popular %}Try {{ p.name }}. {% endfor %}Hi "
    )
    for mjml, expected in ((shows, True), (MJML, False)):
        ws = new_workspace(database_url, "recommending").workspace.id
        _audience(database_url, ws)
        with factories.seeding(database_url) as db:
            [someone] = factories.profiles(db, ws, 1)
            factories.events(db, ws, 1, profile_id=someone, name="Order Completed",
                             properties={"products": [{"product_id": "p-1", "name": "Trail Sock"}]})  # fmt: skip
            db.commit()
        inbox.messages.clear()
        campaign_id = _campaign(database_url, ws, mjml=mjml)
        assert _send_all(database_url, ws, campaign_id, port)["SENT"] == 45
        bodies = [message_from_bytes(data, policy=default).get_body(("html",)).get_content()
                  for _, _, data in inbox.messages]  # fmt: skip
        assert len(bodies) == 45
        assert all(("Try Trail Sock." in body) is expected for body in bodies)


AUDIENCE = 10_000


def test_variants_split_the_audience_by_weight_and_the_holdout_gets_nothing(database_url):
    ws = new_workspace(database_url, "variants").workspace.id
    with factories.seeding(database_url) as db:
        ids = factories.profiles(db, ws, AUDIENCE)
        factories._identities(
            db, ws, [("email", f"v{i}@example.org", pid) for i, pid in enumerate(ids)]
        )
        for pid in ids:
            factories.consent_record(db, ws, pid)
        db.commit()
    variants = [campaigns.Variant("a", "Subject A", 3), campaigns.Variant("b", "Subject B", 1)]
    campaign_id = _campaign(database_url, ws, variants=variants, holdout_percent=10)

    async def start(units: Callable[[], UnitOfWork]) -> int:
        async with units() as uow:
            await campaigns.send(uow, ACTOR, campaign_id)
            count = await campaigns.start(uow, campaign_id)
            await uow.commit()
            return count

    assert _run(database_url, ws, start) == AUDIENCE
    rows = _deliveries(database_url, ws, campaign_id)
    holdout = [r for r in rows if r.holdout]
    assert all(r.status == "SKIPPED" and r.reason == "holdout" for r in holdout)
    assert abs(len(holdout) / AUDIENCE - 0.10) < 0.03
    rest = [r for r in rows if not r.holdout]
    share_a = sum(1 for r in rest if r.variant == "a") / len(rest)
    assert abs(share_a - 0.75) < 0.03
    assert {r.variant for r in rest} == {"a", "b"}

    async def cancel(uow: UnitOfWork) -> None:  # nothing of it is left for a real worker to send
        await campaigns.cancel(uow, ACTOR, campaign_id)

    in_uow(database_url, ws, cancel)
