"""Date and inactivity triggers: a schedule row per profile, kept by the changes that move it.

- A date trigger ({"dateTrait": "birthday", "annual": true, "at": "09:00"})
  schedules each profile at the next anniversary of the date in its trait,
  at that local time in its zone (the `timezone` trait, else the send
  policy's default). A trait change re-schedules the profile, in the
  change's transaction (`domain.changes`).
- An inactivity trigger ({"inactiveDays": 90}) schedules each profile N days
  after its latest event (by the event's own time); each new event moves it.
- Activating the journey (or a version with another trigger) fills the
  schedule for every live profile, once.
- The timer (`enter_due`) claims the due rows through the index on
  `due_at`, enrols each profile, and moves a date row on a year (an
  inactivity row is dropped: the next event makes a new one).

The SQL function `cdp_next_anniversary` computes in the database what
`timing.next_anniversary` computes in Python (for simulations); a test holds
the two together.
"""

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from cdp import traits
from delivery.journeys import model as m
from delivery.journeys import repository
from delivery.journeys.repository import Entry
from domain import changes
from domain.ids import new_id
from domain.uow import Statement, UnitOfWork

CLAIM_BATCH = 1000
DATE, INACTIVE = "date", "inactive"
_DATE_REASONS = frozenset({changes.TRAITS, changes.NEW, changes.MERGE, changes.PROFILE})

# The zone each profile's local times are in: a zone PostgreSQL knows from the
# trait, else the workspace's default.
_ZONE = (
    "CASE WHEN p.traits->>'timezone' IN (SELECT name FROM pg_timezone_names) "
    "THEN p.traits->>'timezone' ELSE (SELECT COALESCE(max(s.default_timezone), 'UTC') "
    "FROM send_policies s WHERE s.workspace_id = %(ws)s) END"
)


def _next_date(after: str) -> str:
    """SQL for a profile's (`p`) next anniversary under a date trigger (`t`) after `after`."""
    return f"cdp_next_anniversary(p.traits #>> t.path, t.at_local::time, {_ZONE}, {after})"


_RESCHEDULE_DATES = (
    "WITH t AS (SELECT journey_id, string_to_array(trait, '.') AS path, at_local "  # noqa: S608
    " FROM journey_timed WHERE workspace_id = %(ws)s AND kind = 'date'), "
    "due AS (SELECT t.journey_id, p.id, "
    f" CASE WHEN p.merged_into IS NULL THEN {_next_date('now()')} END AS at "
    " FROM t CROSS JOIN profiles p WHERE p.workspace_id = %(ws)s AND p.id = ANY(%(ids)s::uuid[])), "
    "gone AS (DELETE FROM journey_schedules s USING due "
    " WHERE s.workspace_id = %(ws)s AND s.journey_id = due.journey_id AND s.profile_id = due.id "
    " AND due.at IS NULL AND s.due_at > now()) "
    "INSERT INTO journey_schedules (workspace_id, journey_id, profile_id, due_at) "
    "SELECT %(ws)s, due.journey_id, due.id, due.at FROM due WHERE due.at IS NOT NULL "
    # A row already due is the timer's: a trait change does not take a birthday away.
    "ON CONFLICT (workspace_id, journey_id, profile_id) DO UPDATE SET due_at = EXCLUDED.due_at "
    "WHERE journey_schedules.due_at > now() "
    " AND journey_schedules.due_at IS DISTINCT FROM EXCLUDED.due_at"
)

_INACTIVE_FROM_EVENTS = (
    "WITH last AS (SELECT e.pid, max(e.at) AS at FROM unnest(%(pids)s::uuid[], "
    " %(times)s::timestamptz[]) AS e(pid, at) GROUP BY e.pid) "
    "INSERT INTO journey_schedules (workspace_id, journey_id, profile_id, due_at) "
    "SELECT %(ws)s, t.journey_id, last.pid, last.at + t.days * interval '1 day' "
    "FROM journey_timed t CROSS JOIN last WHERE t.workspace_id = %(ws)s AND t.kind = 'inactive' "
    "ON CONFLICT (workspace_id, journey_id, profile_id) "
    # Moved an hour or more at a time, so a busy profile is not rewritten on every event;
    # the timer checks the latest event again before it enrols (`enter_due`).
    "DO UPDATE SET due_at = EXCLUDED.due_at "
    "WHERE EXCLUDED.due_at > journey_schedules.due_at + interval '1 hour'"
)


class DateListener:
    """Re-schedules the date triggers of profiles whose traits changed (`domain.changes`)."""

    def statements(
        self, workspace_id: UUID, touched: Mapping[UUID, frozenset[str]]
    ) -> list[Statement]:
        ids = [str(pid) for pid, why in touched.items() if why & _DATE_REASONS]
        if not ids:
            return []
        # The database's clock: a listener has no unit of work (the timer uses its clock).
        return [Statement(_RESCHEDULE_DATES, {"ws": workspace_id, "ids": ids})]


class InactivityListener:
    """Moves the inactivity triggers of profiles that have new events (`domain.changes`)."""

    def event_statements(self, workspace_id: UUID, events: changes.NewEvents) -> list[Statement]:
        # A message delivered to someone is not something they did.
        active = [n for n, name in enumerate(events.names) if traits.is_activity(name)]
        if not active:
            return []
        params = {"ws": workspace_id, "pids": [events.profiles[n] for n in active],
                  "times": [events.times[n] for n in active]}  # fmt: skip
        return [Statement(_INACTIVE_FROM_EVENTS, params)]


changes.register(DateListener())
changes.register_events(InactivityListener())


async def follow(uow: UnitOfWork, journey_id: UUID, trigger: m.Trigger | None) -> None:
    """Make the journey's timed trigger what `trigger` is (None: it has none now), and fill its
    schedule for every live profile when it changed."""
    rows = await uow.fetch(
        "SELECT kind, trait, at_local, days FROM journey_timed "
        "WHERE workspace_id = %(ws)s AND journey_id = %(j)s",
        {"ws": uow.workspace_id, "j": journey_id},
    )
    wanted = _row(trigger)
    current = (rows[0].kind, rows[0].trait, rows[0].at_local, rows[0].days) if rows else None
    if wanted == current:
        return
    params: dict[str, Any] = {"ws": uow.workspace_id, "j": journey_id}
    await uow.fetch("DELETE FROM journey_timed WHERE workspace_id = %(ws)s AND journey_id = %(j)s "
                    "RETURNING 1", params)  # fmt: skip
    await uow.fetch("DELETE FROM journey_schedules WHERE workspace_id = %(ws)s "
                    "AND journey_id = %(j)s RETURNING 1", params)  # fmt: skip
    if wanted is None:
        return
    kind, trait, at_local, days = wanted
    await uow.fetch(
        "INSERT INTO journey_timed (workspace_id, journey_id, kind, trait, at_local, days) "
        "VALUES (%(ws)s, %(j)s, %(kind)s, %(trait)s, %(at)s, %(days)s) RETURNING 1",
        {**params, "kind": kind, "trait": trait, "at": at_local, "days": days},
    )
    await _fill(uow, journey_id, kind, params)


def _row(trigger: m.Trigger | None) -> tuple[str, str | None, str | None, int | None] | None:
    if isinstance(trigger, m.DateTrigger):
        return DATE, trigger.trait, trigger.at.strftime("%H:%M"), None
    if isinstance(trigger, m.InactivityTrigger):
        return INACTIVE, None, None, trigger.days
    return None


async def _fill(uow: UnitOfWork, journey_id: UUID, kind: str, params: dict[str, Any]) -> None:
    if kind == DATE:
        due = _next_date("%(now)s")
        source = ("(SELECT string_to_array(trait, '.') AS path, at_local FROM journey_timed "
                  "WHERE workspace_id = %(ws)s AND journey_id = %(j)s) t")  # fmt: skip
    else:
        due = ("COALESCE((p.computed->>'last_seen')::timestamptz, p.created_at) "
               "+ t.days * interval '1 day'")  # fmt: skip
        source = ("(SELECT days FROM journey_timed WHERE workspace_id = %(ws)s "
                  "AND journey_id = %(j)s) t")  # fmt: skip
    await uow.fetch(
        "INSERT INTO journey_schedules (workspace_id, journey_id, profile_id, due_at) "  # noqa: S608 - fixed fragments
        f"SELECT %(ws)s, %(j)s, s.id, s.at FROM (SELECT p.id, {due} AS at FROM {source} "
        " CROSS JOIN profiles p WHERE p.workspace_id = %(ws)s AND p.merged_into IS NULL) s "
        "WHERE s.at IS NOT NULL RETURNING 1",
        {**params, "now": uow.clock.now()},
    )


_CLAIM = (
    "SELECT s.journey_id, s.profile_id, s.due_at, t.kind, t.days, "
    " p.id IS NULL OR p.merged_into IS NOT NULL AS gone, "
    " (p.computed->>'last_seen')::timestamptz AS last_seen "
    "FROM journey_schedules s "
    "JOIN journey_timed t ON t.workspace_id = s.workspace_id AND t.journey_id = s.journey_id "
    "LEFT JOIN profiles p ON p.workspace_id = s.workspace_id AND p.id = s.profile_id "
    "WHERE s.workspace_id = %(ws)s AND s.journey_id = %(j)s AND s.due_at <= %(now)s "
    "ORDER BY s.due_at LIMIT %(n)s FOR UPDATE OF s SKIP LOCKED"
)
_AFTER_DUE = "d.due_at + interval '1 minute'"
_NEXT_YEAR = (
    "UPDATE journey_schedules s SET due_at = n.at FROM ("  # noqa: S608 - fixed fragments
    f" SELECT t.journey_id, p.id, {_next_date(_AFTER_DUE)} AS at "
    " FROM unnest(%(js)s::uuid[], %(ps)s::uuid[], %(dues)s::timestamptz[]) AS d(j, p, due_at) "
    " JOIN (SELECT journey_id, string_to_array(trait, '.') AS path, at_local FROM journey_timed "
    "  WHERE workspace_id = %(ws)s) t ON t.journey_id = d.j "
    " JOIN profiles p ON p.workspace_id = %(ws)s AND p.id = d.p) n "
    "WHERE s.workspace_id = %(ws)s AND s.journey_id = n.journey_id AND s.profile_id = n.id "
    " AND n.at IS NOT NULL RETURNING 1"
)
# Rows still at the due time they were claimed at: an inactivity entered, a date with no
# next turn (the trait is gone), a profile merged into another.
_DROP = (
    "DELETE FROM journey_schedules s USING unnest(%(js)s::uuid[], %(ps)s::uuid[], "
    " %(dues)s::timestamptz[]) AS d(j, p, due_at) WHERE s.workspace_id = %(ws)s "
    " AND s.journey_id = d.j AND s.profile_id = d.p AND s.due_at = d.due_at RETURNING 1"
)
_MOVE_ON = (
    "UPDATE journey_schedules s SET due_at = d.due_at FROM unnest(%(js)s::uuid[], "
    " %(ps)s::uuid[], %(dues)s::timestamptz[]) AS d(j, p, due_at) WHERE s.workspace_id = %(ws)s "
    " AND s.journey_id = d.j AND s.profile_id = d.p RETURNING 1"
)


def _columns(rows: list[Any], due: Callable[[Any], datetime] | None = None) -> dict[str, list[Any]]:
    return {"js": [r.journey_id for r in rows], "ps": [r.profile_id for r in rows],
            "dues": [due(r) if due else r.due_at for r in rows]}  # fmt: skip


async def _claim(uow: UnitOfWork, journey_ids: list[UUID]) -> list[Any]:
    found: list[Any] = []
    for journey_id in journey_ids:
        if len(found) >= CLAIM_BATCH:
            break
        found.extend(await uow.fetch(_CLAIM, {"ws": uow.workspace_id, "j": journey_id,
                                              "now": uow.clock.now(),
                                              "n": CLAIM_BATCH - len(found)}))  # fmt: skip
    return found


def _still_silent(row: Any) -> bool:
    """An inactivity row whose profile had no event since it was last moved (it moves only an
    hour or more at a time)."""
    return (
        row.kind != INACTIVE
        or row.last_seen is None
        or (row.last_seen + timedelta(days=row.days) <= row.due_at)
    )


async def enter_due(uow: UnitOfWork, plans: Mapping[UUID, tuple[int, Any]]) -> int:
    """Enrol the profiles whose date or inactivity is due in these journeys (id -> (version,
    plan)); move their schedules on. How many entered."""
    rows = await _claim(uow, list(plans))
    if not rows:
        return 0
    ws = {"ws": uow.workspace_id}
    later = [r for r in rows if not r.gone and not _still_silent(r)]
    if later:
        await uow.fetch(_MOVE_ON, {**ws, **_columns(
            later, lambda r: r.last_seen + timedelta(days=r.days))})  # fmt: skip
    due = [r for r in rows if not r.gone and _still_silent(r)]
    entries = []
    for row in due:
        version, plan = plans[row.journey_id]
        name = "Anniversary" if row.kind == DATE else "Inactive"
        event = {"name": name, "properties": {"days": row.days} if row.days else {},
                 "timestamp": row.due_at.isoformat()}  # fmt: skip
        entries.append(Entry(
            new_id(), row.journey_id, version, row.profile_id, plan.start().step,
            f"{row.kind}:{row.due_at.isoformat()}:{row.profile_id}",
            m.ONCE_KEYS[plan.definition.reentry], event, row.due_at,
        ))  # fmt: skip
    entered = await repository.enrol(uow, entries)
    dates = [r for r in due if r.kind == DATE]
    if dates:
        await uow.fetch(_NEXT_YEAR, {**ws, **_columns(dates)})
    dropped = [r for r in rows if r.gone or r.kind == DATE or _still_silent(r)]
    if dropped:
        await uow.fetch(_DROP, {**ws, **_columns(dropped)})
    return len(entered)
