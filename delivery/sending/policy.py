"""The send policy: how many marketing messages a person gets, not at night, and how fast.

Per workspace (`setSendPolicy`): at most `frequency_cap` marketing messages
per person in `frequency_hours`, counted across campaigns (and journeys,
when they send); quiet hours in the recipient's time zone (the `timezone`
trait, or the workspace's default), which move a message to the end of the
quiet period. Transactional purposes bypass both; nothing bypasses the
contact gate. The policy also sets the throttle's rates (`throttle.py`),
which every message keeps.
"""

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from consent import audit
from consent.model import TRANSACTIONAL_PURPOSES
from delivery.sending import throttle
from delivery.sending.tables import campaigns, deliveries, send_policies
from domain.errors import ValidationError
from domain.uow import UnitOfWork

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
MAX_CAP_HOURS = 24 * 31


@dataclass(frozen=True)
class SendPolicy:
    frequency_cap: int | None = None
    frequency_hours: int | None = None
    quiet_start: str | None = None
    quiet_end: str | None = None
    default_timezone: str = "UTC"
    sending_domain_rate: float = throttle.DEFAULT_SENDING_RATE
    recipient_domain_rate: float = throttle.DEFAULT_RECIPIENT_RATE
    track_opens: bool = True
    track_clicks: bool = True

    @property
    def capped(self) -> bool:
        return self.frequency_cap is not None and self.frequency_hours is not None

    @property
    def rates(self) -> throttle.Rates:
        return throttle.Rates(self.sending_domain_rate, self.recipient_domain_rate)


def zone(name: Any, default: str) -> ZoneInfo:
    """The recipient's zone: a valid IANA name from the trait, else the default."""
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(default)


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(policy: SendPolicy, now: datetime, where: ZoneInfo) -> datetime | None:
    """When the quiet period that `now` falls in ends (UTC), or None outside quiet hours."""
    if not policy.quiet_start or not policy.quiet_end:
        return None
    local = now.astimezone(where)
    start, end = _clock(policy.quiet_start), _clock(policy.quiet_end)
    moment = local.time()
    wraps = start > end  # 21:00 to 08:00 goes past midnight
    inside = (start <= moment or moment < end) if wraps else (start <= moment < end)
    if not inside:
        return None
    ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends.astimezone(now.tzinfo)


def local_due(wall_clock: datetime, where: ZoneInfo) -> datetime:
    """The UTC moment of the wall-clock time `wall_clock` (its zone ignored) in `where`."""
    return wall_clock.replace(tzinfo=None).replace(tzinfo=where).astimezone(wall_clock.tzinfo)


def check(policy: SendPolicy) -> SendPolicy:
    if (policy.frequency_cap is None) != (policy.frequency_hours is None):
        raise ValidationError("give frequencyCap and frequencyHours together", field="frequencyCap")
    if policy.frequency_cap is not None and policy.frequency_cap < 1:
        raise ValidationError("frequencyCap must be at least 1", field="frequencyCap")
    if policy.frequency_hours is not None and not 1 <= policy.frequency_hours <= MAX_CAP_HOURS:
        raise ValidationError(f"frequencyHours must be 1 to {MAX_CAP_HOURS}",
                              field="frequencyHours")  # fmt: skip
    if (policy.quiet_start is None) != (policy.quiet_end is None):
        raise ValidationError("give quietHoursStart and quietHoursEnd together",
                              field="quietHoursStart")  # fmt: skip
    for field, value in (
        ("quietHoursStart", policy.quiet_start),
        ("quietHoursEnd", policy.quiet_end),
    ):
        if value is not None and not _CLOCK.match(value):
            raise ValidationError("a time of day is HH:MM, from 00:00 to 23:59", field=field)
    for field, rate in (
        ("sendingDomainRate", policy.sending_domain_rate),
        ("recipientDomainRate", policy.recipient_domain_rate),
    ):
        if not 0 < rate <= throttle.MAX_RATE:
            raise ValidationError(f"a rate is more than 0 and at most {throttle.MAX_RATE:g} "
                                  "messages a second", field=field)  # fmt: skip
    try:
        ZoneInfo(policy.default_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {policy.default_timezone!r}; use an IANA name "
                              "such as Europe/Berlin", field="defaultTimezone") from None  # fmt: skip
    return policy


async def get(uow: UnitOfWork) -> SendPolicy:
    row = (
        await uow.execute(
            select(send_policies).where(send_policies.c.workspace_id == uow.workspace_id)
        )
    ).one_or_none()
    if row is None:
        return SendPolicy()
    return SendPolicy(row.frequency_cap, row.frequency_hours, row.quiet_start, row.quiet_end,
                      row.default_timezone, row.sending_domain_rate,
                      row.recipient_domain_rate, row.track_opens, row.track_clicks)  # fmt: skip


async def set_policy(uow: UnitOfWork, actor: audit.Actor, policy: SendPolicy) -> SendPolicy:
    values = check(policy).__dict__ | {"updated_at": uow.clock.now()}
    statement = insert(send_policies).values(workspace_id=uow.workspace_id, **values)
    await uow.execute(statement.on_conflict_do_update(index_elements=["workspace_id"], set_=values))
    await audit.record(uow, actor, "send_policy.set", object_type="workspace",
                       object_id=uow.workspace_id, details=policy.__dict__)  # fmt: skip
    return await get(uow)


async def recent_counts(
    uow: UnitOfWork, profile_ids: list[UUID], since: datetime
) -> dict[UUID, int]:
    """How many marketing messages each profile was sent since `since`."""
    d, c = deliveries, campaigns
    rows = await uow.execute(
        select(d.c.profile_id, func.count())
        .join(c, (c.c.workspace_id == d.c.workspace_id) & (c.c.id == d.c.campaign_id))
        .where(d.c.workspace_id == uow.workspace_id, d.c.profile_id.in_(profile_ids),
               d.c.status == "SENT", d.c.sent_at >= since,
               c.c.purpose.not_in(sorted(TRANSACTIONAL_PURPOSES)))
        .group_by(d.c.profile_id)
    )  # fmt: skip
    return {pid: int(n) for pid, n in rows}
