"""Local times for journeys: the next time of day in a zone, and a date trait's next yearly turn.

Zone arithmetic is done on the wall clock and converted to UTC last, so
"09:00" stays 09:00 across daylight-saving changes. A time that a change
skips (02:30 on the night clocks go forward) is read with the offset before
the change, which lands the same distance after the jump (03:30); a time that a
change brings twice (01:30 on the night clocks go back) is the first of the two.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_DAYS_AHEAD = 2


def _at(day: date, clock: time, where: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=where).astimezone(UTC)


def next_time_of_day(after: datetime, clock: time, where: ZoneInfo) -> datetime:
    """The first moment strictly after `after` when the wall clock in `where` reads `clock` (UTC)."""
    today = after.astimezone(where).date()
    for offset in range(MAX_DAYS_AHEAD + 1):
        moment = _at(today + timedelta(days=offset), clock, where)
        if moment > after:
            return moment
    raise AssertionError("a time of day comes within two days")  # pragma: no cover


def next_anniversary(after: datetime, when: date, clock: time, where: ZoneInfo) -> datetime:
    """The first moment at or after `after` that is `when`'s month and day at `clock` in `where`.

    The 29th of February is kept on the 28th in a year without one.
    """
    year = after.astimezone(where).year
    for candidate in (year, year + 1, year + 2):
        try:
            day = when.replace(year=candidate)
        except ValueError:
            day = date(candidate, 2, 28)
        moment = _at(day, clock, where)
        if moment >= after:
            return moment
    raise AssertionError("an anniversary comes within two years")  # pragma: no cover
