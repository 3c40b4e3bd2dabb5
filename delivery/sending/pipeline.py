"""The sending pipeline: a batch of deliveries claimed, gated, rendered, signed and sent.

A batch is claimed by setting a lease on its rows (`FOR UPDATE SKIP LOCKED`
keeps two workers off the same rows) and committed before anything is sent.
Each message's outcome is committed as soon as the relay answers, so a
worker killed mid-batch leaves only its unsent rows, which another worker
claims once the lease has passed: a message at most is sent twice, the one
in flight. Outcomes are committed without waiting for the disk
(`synchronous_commit = off`): a crash of the database itself may forget the
last few, which are then sent again, never lost.

Per recipient: the contact gate (consent.gate, nothing else), the render of
the campaign's template version (and its variant's subject), the message
with its headers and DKIM signatures, SMTP to the relay.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from cdp import queries
from consent import gate
from consent.keys import Keys
from consent.model import is_marketing
from delivery.sending import campaigns, domains, message, relay, repository, throttle
from delivery.sending import policy as policy_rules
from delivery.sending.campaigns import SENDING, Campaign
from delivery.sending.repository import Claimed
from delivery.sending.sent_records import Queued, SentRecords
from delivery.templates import recipients as template_recipients
from delivery.templates import render as rendering
from delivery.templates import services as template_services
from delivery.templates.compiler import CompiledTemplate, Part, names_used, parse_liquid
from delivery.templates.model import Recipient, RenderedEmail, RenderError, Sender
from delivery.tracking.links import track_html
from delivery.tracking.tokens import Tokens
from domain.outbox import Job
from domain.personal_data import Subject
from domain.uow import Autocommit, UnitOfWork

BATCH = 500
RECOMMENDATIONS = "recommendations"  # the template variable (API.md, "Templates")
LEASE = timedelta(minutes=5)
CHECK_EVERY = 50  # messages between looks at whether the campaign was paused or cancelled
RETRY_BASE = timedelta(minutes=1)
MAX_ATTEMPTS = 8
MIN_DELAY_MS = 250  # a throttled campaign looks for its next token no more often
Units = Callable[[], UnitOfWork]


@dataclass(frozen=True)
class Sending:
    """What a worker process sends with: its secret, its public URL, its relay connections, and
    the SENT outcomes its batches record together."""

    secret: str
    base_url: str
    pool: relay.Pool
    lease: timedelta = LEASE
    sent: SentRecords = field(default_factory=SentRecords)
    link_lifetime: timedelta = timedelta(days=365)

    @property
    def tokens(self) -> Tokens:
        found = _tokens.get((self.secret, self.link_lifetime))
        if found is None:
            found = _tokens[(self.secret, self.link_lifetime)] = Tokens(
                self.secret, lifetime=self.link_lifetime
            )
        return found


_tokens: dict[tuple[str, timedelta], Tokens] = {}


def emails_of(merged: dict[UUID, list[UUID]], held: dict[UUID, list[Any]]) -> dict[UUID, str]:
    found: dict[UUID, str] = {}
    for survivor, ids in merged.items():
        emails = sorted(i.value for pid in ids for i in held.get(pid, []) if i.kind == "email")
        if emails:
            found[survivor] = emails[0]
    return found


async def refusals(
    uow: UnitOfWork,
    keys: Keys,
    merged: dict[UUID, list[UUID]],
    held: dict[UUID, list[Any]],
    purpose: str,
) -> dict[UUID, str | None]:
    """Each survivor's refusal reason, or None when it may be sent this message."""
    order = list(merged)
    subjects = [
        keys.hashed(Subject(uow.workspace_id, tuple(merged[pid]),
                            tuple((i.kind, i.value) for m in merged[pid] for i in held.get(m, []))))
        for pid in order
    ]  # fmt: skip
    answers = await gate.contactability(uow, subjects, channel="email", purpose=purpose)
    return {
        pid: None if a.allowed else (a.reason or "not contactable")
        for pid, a in zip(order, answers, strict=True)
    }


_subjects: dict[tuple[UUID, str], Part] = {}


def _variant_subject(campaign: Campaign, name: str | None) -> Part | None:
    chosen = next((v for v in campaign.variants if v["name"] == name), None)
    if chosen is None:
        return None
    key = (campaign.id, name or "")
    if key not in _subjects:
        _subjects[key] = Part.of(parse_liquid(chosen["subject"], field="subject", html=False),
                                 html=False)  # fmt: skip
    return _subjects[key]


@dataclass(frozen=True)
class _Batch:
    campaign: Campaign
    compiled: Any
    sender: Sender
    signers: list[Any]
    domain: str
    people: dict[UUID, Recipient]
    emails: dict[UUID, str]
    refused: dict[UUID, str | None]
    survivors: dict[UUID, UUID]
    policy: policy_rules.SendPolicy
    recent: dict[UUID, int]  # messages sent to each recipient within the cap's window
    workspace_id: UUID
    now: datetime


async def _prepare(uow: UnitOfWork, sending: Sending, campaign: Campaign,
                   rows: list[Claimed]) -> _Batch:  # fmt: skip
    version_no = campaign.template_version
    if version_no is None:
        raise RuntimeError("a sending campaign has its template version")
    from delivery.templates import repository as template_store  # noqa: PLC0415 - one use

    found = await template_store.versions(uow, [(campaign.template_id, version_no)])
    version = found[(campaign.template_id, version_no)]
    compiled = template_services.compiled_version(uow.workspace_id, version)
    domain = await domains.get(uow, campaign.domain_id)
    signers = await domains.signers(uow, sending.secret, domain)
    keys = Keys(sending.secret)
    links_for = template_recipients.LinkMaker(keys, sending.base_url)
    people = await template_recipients.load(
        uow, [r.profile_id for r in rows], purpose=campaign.purpose, links_for=links_for,
        recommending=_recommends(campaign, compiled),
    )  # fmt: skip
    survivors = {pid: UUID(person.profile["id"]) for pid, person in people.items()}
    merged = await queries.merged_ids(uow, sorted(set(survivors.values())))
    held = await queries.identities_of(uow, [i for ids in merged.values() for i in ids])
    rules = await policy_rules.get(uow)
    recent: dict[UUID, int] = {}
    if rules.capped and rules.frequency_hours is not None:
        since = uow.clock.now() - timedelta(hours=rules.frequency_hours)
        recent = await policy_rules.recent_counts(uow, [r.profile_id for r in rows], since)
    return _Batch(
        campaign, compiled, await template_services.sender(uow), signers, domain.domain, people,
        emails_of(merged, held),
        await refusals(uow, keys, merged, held, campaign.purpose), survivors,
        rules, recent, uow.workspace_id, uow.clock.now(),
    )  # fmt: skip


def _recommends(campaign: Campaign, compiled: CompiledTemplate) -> bool:
    """Whether the campaign's messages show recommendations (a variant's subject may too)."""
    subjects = (_variant_subject(campaign, v["name"]) for v in campaign.variants)
    return RECOMMENDATIONS in compiled.names or any(
        s is not None and RECOMMENDATIONS in names_used(s.template) for s in subjects
    )


def _skip_reason(batch: _Batch, row: Claimed) -> str | None:
    survivor = batch.survivors.get(row.profile_id)
    if survivor is None:
        return "the profile is gone"
    if survivor not in batch.emails:
        return "no email address"
    return batch.refused.get(survivor)


def _hold(batch: _Batch, row: Claimed, now: datetime) -> tuple[str, datetime | None, str] | None:
    """What the send policy does with this message now: ("QUEUED", until, why) to wait,
    ("SKIPPED", None, why) to drop it, or None to send it."""
    campaign, rules = batch.campaign, batch.policy
    where = policy_rules.zone(batch.people[row.profile_id].profile["traits"].get("timezone"),
                              rules.default_timezone)  # fmt: skip
    if campaign.local_time and campaign.scheduled_at is not None:
        due = policy_rules.local_due(campaign.scheduled_at, where)
        if due > now:
            return "QUEUED", due, f"waits for {campaign.scheduled_at:%H:%M} in {where.key}"
    if not is_marketing(campaign.purpose):
        return None  # transactional messages keep neither quiet hours nor the cap
    until = policy_rules.quiet_until(rules, now, where)
    if until is not None:
        return "QUEUED", until, f"quiet hours in {where.key} until {rules.quiet_end}"
    if rules.capped and batch.recent.get(row.profile_id, 0) >= (rules.frequency_cap or 0):
        return "SKIPPED", None, (f"frequency cap: {rules.frequency_cap} messages in "
                                 f"{rules.frequency_hours} hours")  # fmt: skip
    return None


def _kind(campaign: Campaign) -> str:
    """The mail stream, for a mailbox provider's feedback loop: a campaign or a journey."""
    return "campaign" if campaign.journey_id is None else "journey"


async def _send_one(out: Autocommit, sending: Sending, batch: _Batch, row: Claimed,
                    before: Queued | None) -> tuple[str, Queued | None]:  # fmt: skip
    """Render and sign one message, wait for the batch's message `before` to be recorded SENT,
    send this one, and record what the relay said; a SENT outcome is queued, and the caller
    waits for it before the next message goes out (or its batch ends)."""
    campaign, ws = batch.campaign, batch.workspace_id
    survivor = batch.survivors[row.profile_id]
    person = batch.people[row.profile_id]
    if row.event is not None:
        person = replace(person, event=row.event)
    compiled = batch.compiled
    subject = _variant_subject(campaign, row.variant)
    if subject is not None:
        compiled = replace(compiled, subject=subject)
    try:
        email = rendering.render(compiled, person, batch.sender)
    except RenderError as error:
        await repository.record_now(out, ws, row.id, status="FAILED", reason=str(error))
        return "FAILED", before
    email = _tracked(email, sending, batch, row, person=person, at=out.clock.now())
    envelope = message.build(
        email,
        message.Addressing(campaign.from_email, batch.emails[survivor], campaign.from_name,
                           campaign.reply_to),
        delivery_id=row.id, domain=batch.domain, unsubscribe_url=person.unsubscribe_url,
        feedback_id=f"{campaign.id.hex[:12]}:{ws.hex[:12]}:{_kind(campaign)}:cdp",
        at=out.clock.now(), secret=sending.secret, signers=batch.signers,
    )  # fmt: skip
    # Only once the message before is recorded does this one leave: a crash sends again at
    # most the one message in flight. Its outcome's write went on while this one was made.
    if before is not None:
        await sending.sent.wait(out, ws, before)
    async with sending.pool.connection() as connection:
        outcome = await connection.send(envelope)
    if outcome.result is relay.Result.SENT:
        return outcome.result.value, sending.sent.submit(ws, row.id, envelope.message_id,
                                                         out.clock.now())  # fmt: skip
    if outcome.result is relay.Result.DEFERRED and row.attempts < MAX_ATTEMPTS:
        retry = out.clock.now() + RETRY_BASE * 2 ** (row.attempts - 1)
        await repository.record_now(out, ws, row.id, status="DEFERRED", reason=outcome.reply,
                                    due_at=retry)  # fmt: skip
    else:
        await repository.record_now(out, ws, row.id, reason=outcome.reply,
                                    status="BOUNCED" if outcome.code else "FAILED")  # fmt: skip
    return outcome.result.value, None


def _tracked(email: RenderedEmail, sending: Sending, batch: _Batch, row: Claimed, *,
             person: Recipient, at: datetime) -> RenderedEmail:  # fmt: skip
    """The HTML with its links through the click redirect and the open pixel, as the
    workspace's policy has them."""
    rules = batch.policy
    if not (rules.track_clicks or rules.track_opens):
        return email
    html = track_html(
        email.html, tokens=sending.tokens, base_url=sending.base_url,
        workspace_id=batch.workspace_id, delivery_id=row.id, at=at, clicks=rules.track_clicks,
        opens=rules.track_opens, keep=(person.unsubscribe_url, person.preferences_url),
    )  # fmt: skip
    return replace(email, html=html)


@dataclass
class _Lease:
    """A batch's hold on its deliveries: until when, and which are still its own."""

    until: datetime
    renew_at: datetime
    mine: set[UUID]


async def send_batch(units: Units, sending: Sending, campaign_id: UUID) -> dict[str, int]:
    """Claim and send one batch of the campaign; queue the next one, or finish the campaign."""
    async with units() as uow:
        campaign = await campaigns.get(uow, campaign_id)
        if campaign.status != SENDING:
            return {}
        rates = (await policy_rules.get(uow)).rates
        room = int(await throttle.room(uow, throttle.domain_of(campaign.from_email), rates))
        if room < 1:  # the sending domain's limit is reached: come back for its next token
            await _next_batch(uow, campaign_id, delay=timedelta(seconds=1 / rates.sending))
            await uow.commit()
            return {}
        now = uow.clock.now()
        lease = _Lease(now + sending.lease, now + sending.lease / 2, set())
        rows = await repository.claim(uow, campaign_id, limit=min(BATCH, room), until=lease.until)
        await uow.commit()
    if not rows:
        await _finish_or_wait(units, campaign_id)
        return {}
    async with units() as uow:
        batch = await _prepare(uow, sending, campaign, rows)
    tally: dict[str, int] = {}
    to_send = await _sort_out(units, batch, rows, rates, tally)
    lease.mine = {row.id for row in to_send}
    async with units() as uow, uow.autocommit() as out:  # the outcomes, a commit each
        queued: Queued | None = None  # the last message sent, its outcome not yet waited for
        for n, row in enumerate(to_send):
            if n and n % CHECK_EVERY == 0 and not await _still_sending(out, batch):
                if queued is not None:
                    await sending.sent.wait(out, batch.workspace_id, queued)
                await _release(units, [r.id for r in to_send[n:] if r.id in lease.mine],
                               lease.until)  # fmt: skip
                return tally
            if not await _still_held(out, sending, batch, lease, to_send[n:]):
                continue  # its lease passed and another worker has it
            result, queued = await _send_one(out, sending, batch, row, queued)
            tally[result] = tally.get(result, 0) + 1
        if queued is not None:
            await sending.sent.wait(out, batch.workspace_id, queued)
    async with units() as uow:
        await _next_batch(uow, campaign_id)
        await uow.commit()
    return tally


async def _sort_out(units: Units, batch: _Batch, rows: list[Claimed], rates: throttle.Rates,
                    tally: dict[str, int]) -> list[Claimed]:  # fmt: skip
    """Record the skipped and the held, take the throttle's tokens; the rows to send now."""
    now = batch.now
    skipped = {row.id: reason for row in rows if (reason := _skip_reason(batch, row))}
    held = {row.id: hold for row in rows
            if row.id not in skipped and (hold := _hold(batch, row, now))}  # fmt: skip
    sendable = [row for row in rows if row.id not in skipped and row.id not in held]
    async with units() as uow:
        for delivery_id, reason in skipped.items():
            repository.record(uow, delivery_id, status="SKIPPED", reason=reason)
        for delivery_id, (status, until, why) in held.items():
            repository.record(uow, delivery_id, status=status, reason=why, due_at=until)
            tally[status] = tally.get(status, 0) + 1
        admitted = await throttle.admit(uow, throttle.domain_of(batch.campaign.from_email), rates,
                                        [(row.id, batch.emails[batch.survivors[row.profile_id]])
                                         for row in sendable])  # fmt: skip
        await repository.defer(uow, admitted.waiting)
        await uow.commit()
    if skipped:
        tally["SKIPPED"] = len(skipped)
    if admitted.waiting:
        tally["THROTTLED"] = len(admitted.waiting)
    return [row for row in sendable if row.id in admitted.allowed]


async def _still_held(out: Autocommit, sending: Sending, batch: _Batch, lease: _Lease,
                      rest: list[Claimed]) -> bool:  # fmt: skip
    """Whether the batch still holds the first of `rest`: past half the lease (a slow relay),
    the rest is held longer, and what another worker took after the lease passed is dropped."""
    now = out.clock.now()
    if now >= lease.renew_at:
        held, lease.until, lease.renew_at = (
            lease.until,
            now + sending.lease,
            now + sending.lease / 2,
        )
        lease.mine = await repository.renew(out, batch.workspace_id,
                                            [r.id for r in rest if r.id in lease.mine],
                                            held=held, until=lease.until)  # fmt: skip
    return rest[0].id in lease.mine


async def _next_batch(uow: UnitOfWork, campaign_id: UUID, delay: timedelta | None = None) -> None:
    delay_ms = max(int(delay.total_seconds() * 1000), MIN_DELAY_MS) if delay else None
    await uow.enqueue(Job(campaigns.BATCH_ACTOR, (str(uow.workspace_id), str(campaign_id)),
                          queue_name=campaigns.QUEUE, delay_ms=delay_ms))  # fmt: skip


async def _still_sending(out: Autocommit, batch: _Batch) -> bool:
    return await repository.status(out, batch.workspace_id, batch.campaign.id) == SENDING


async def _release(units: Units, ids: list[UUID], held: datetime) -> None:
    async with units() as uow:
        await repository.release(uow, ids, held=held)
        await uow.commit()


async def _finish_or_wait(units: Units, campaign_id: UUID) -> None:
    """No batch is due: the campaign is done when nothing waits, or a job waits for the next retry."""
    async with units() as uow:
        left = await repository.waiting(uow, campaign_id)
        waiting, next_due, leased = left.count, left.next_due, left.last_lease
        now = uow.clock.now()
        if waiting == 0:
            await campaigns.finish(uow, campaign_id, now)
        else:
            wake: datetime = max(x for x in (next_due, leased, now) if x is not None)
            wake = max(wake, now + timedelta(seconds=1))
            if await repository.take_wake(uow, campaign_id, wake):
                await _next_batch(uow, campaign_id, wake - now)
        await uow.commit()
