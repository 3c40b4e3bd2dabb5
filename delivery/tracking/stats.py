"""What a marketer reads about messages: counts, the rates computed from them, time series.

Counts come from the hourly counters (`message_stats` and the deltas not
yet rolled up), never from a scan of deliveries or events, so reading a
campaign of a million messages costs a few rows. Rates are computed here,
once, with the denominators the trade uses:
- delivery rate and bounce rate: over delivered + bounced (what was handed to
  the relay: a bounce at the relay never counts as sent);
- open, click, conversion, unsubscribe and complaint rates: over delivered;
- click-to-open rate: clicked / opened;
- revenue per email: revenue / delivered.
`opened` and `clicked` count messages opened or clicked by a person at least
once; `opens` and `clicks` count every human open and click; the machine
counts hold what privacy proxies and scanners fetched.
"""

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from delivery.tracking import repository
from delivery.tracking.significance import Arm, VariantTest, variant_test
from domain.errors import ValidationError
from domain.uow import UnitOfWork

MAX_POINTS = 2_000
METRICS = {"open": "opened", "click": "clicked", "conversion": "converted"}


@dataclass(frozen=True)
class Counts:
    recipients: int = 0
    skipped: int = 0
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    failed: int = 0
    opened: int = 0
    opens: int = 0
    machine_opens: int = 0
    clicked: int = 0
    clicks: int = 0
    machine_clicks: int = 0
    converted: int = 0
    orders: int = 0
    unsubscribed: int = 0
    revenue: Decimal = Decimal(0)

    @classmethod
    def of_row(cls, row: Any) -> "Counts":
        ints = {f.name: int(getattr(row, f.name) or 0) for f in fields(cls) if f.name != "revenue"}
        return cls(**ints, revenue=Decimal(row.revenue or 0))

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                         for f in fields(self)})  # fmt: skip

    @staticmethod
    def total(items: Sequence["Counts"]) -> "Counts":
        found = Counts()
        for item in items:
            found = found + item
        return found

    def rate(self, part: float, whole: float) -> float:
        return round(part / whole, 6) if whole else 0.0

    @property
    def attempted(self) -> int:
        """Messages handed to the relay: delivered, or bounced (at once or later)."""
        return self.delivered + self.bounced

    @property
    def delivery_rate(self) -> float:
        return self.rate(self.delivered, self.attempted)

    @property
    def bounce_rate(self) -> float:
        return self.rate(self.bounced, self.attempted)

    @property
    def open_rate(self) -> float:
        return self.rate(self.opened, self.delivered)

    @property
    def click_rate(self) -> float:
        return self.rate(self.clicked, self.delivered)

    @property
    def click_to_open_rate(self) -> float:
        return self.rate(self.clicked, self.opened)

    @property
    def conversion_rate(self) -> float:
        return self.rate(self.converted, self.delivered)

    @property
    def unsubscribe_rate(self) -> float:
        return self.rate(self.unsubscribed, self.delivered)

    @property
    def complaint_rate(self) -> float:
        return self.rate(self.complained, self.delivered)

    @property
    def revenue_per_email(self) -> float:
        return self.rate(float(self.revenue), self.delivered)


async def by_campaign(uow: UnitOfWork, campaign_ids: Sequence[UUID]) -> dict[UUID, Counts]:
    found: dict[UUID, Counts] = {c: Counts() for c in campaign_ids}
    for row in await repository.totals(uow, campaign_ids):
        found[row.campaign_id] = found[row.campaign_id] + Counts.of_row(row)
    return found


async def by_campaign_variant(
    uow: UnitOfWork, campaign_ids: Sequence[UUID]
) -> dict[UUID, dict[str, Counts]]:
    """Each campaign's counts by variant ("" for messages without one)."""
    found: dict[UUID, dict[str, Counts]] = {c: {} for c in campaign_ids}
    for row in await repository.totals(uow, campaign_ids):
        found[row.campaign_id][row.variant] = Counts.of_row(row)
    return found


async def journey_campaigns(uow: UnitOfWork, journey_id: UUID) -> list[UUID]:
    """The campaigns of a journey's send steps, every version."""
    return list(await repository.journey_campaigns(uow, journey_id))


async def by_journey_step(uow: UnitOfWork, journey_id: UUID) -> dict[str, Counts]:
    """A journey's message counts by step id, over every version."""
    steps = await repository.journey_campaigns(uow, journey_id)
    found: dict[str, Counts] = {}
    for campaign_id, counts in (await by_campaign(uow, list(steps))).items():
        step = steps[campaign_id]
        found[step] = found.get(step, Counts()) + counts
    return found


def test_variants(counts: dict[str, Counts], names: Sequence[str], metric: str) -> VariantTest:
    """Whether the leading variant's rate of `metric` (open, click, conversion) is a real win."""
    if metric not in METRICS:
        raise ValidationError(f"metric is one of {', '.join(METRICS)}", field="metric")
    arms = []
    for name in names:
        found = counts.get(name, Counts())
        # A later bounce takes a message back from delivered but not its open.
        trials = max(found.delivered, 0)
        arms.append(Arm(name, min(getattr(found, METRICS[metric]), trials), trials))
    return variant_test(metric, arms)


def _step(at: datetime, interval: str) -> datetime:
    if interval == "month":
        return at.replace(year=at.year + at.month // 12, month=at.month % 12 + 1)
    return at + {"hour": timedelta(hours=1), "day": timedelta(days=1),
                 "week": timedelta(weeks=1)}[interval]  # fmt: skip


def _truncate(at: datetime, interval: str) -> datetime:
    at = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if interval == "hour":
        return at
    at = at.replace(hour=0)
    if interval == "week":
        return at - timedelta(days=at.weekday())
    return at.replace(day=1) if interval == "month" else at


async def series(
    uow: UnitOfWork, start: datetime, end: datetime, interval: str,
    campaign_ids: Sequence[UUID] | None = None,
) -> list[tuple[datetime, datetime, Counts]]:  # fmt: skip
    """Counts per interval (UTC; weeks start on Monday) from `start`'s interval up to `end`,
    with the empty intervals as zeros."""
    interval = interval.strip().lower()
    if interval not in repository.INTERVALS:
        raise ValidationError(f"interval is one of {', '.join(repository.INTERVALS)}",
                              field="interval")  # fmt: skip
    if end <= start:
        raise ValidationError("to must be after from", field="to")
    points, at = [], _truncate(start, interval)
    try:
        while at < end:
            points.append(at)
            if len(points) > MAX_POINTS:
                raise ValidationError(f"at most {MAX_POINTS} points: choose a longer interval "
                                      "or a shorter range", field="interval")  # fmt: skip
            at = _step(at, interval)
    except (OverflowError, ValueError):  # past the year 9999
        raise ValidationError("to is out of range", field="to") from None
    rows = await repository.series(uow, start, end, interval, campaign_ids)
    found = {row.at: Counts.of_row(row) for row in rows}
    return [(p, _step(p, interval), found.get(p, Counts())) for p in points]
