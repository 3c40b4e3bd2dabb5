"""Notice that profiles changed, for the state derived from them (segment memberships).

A context that changes a profile (ingest, a consent record, an erasure) says
so here, in its own transaction; a context above it (cdp.segments) registers
a listener that turns the notice into a statement of that transaction. The
notice is therefore committed exactly when the change is, and no context
below needs to know who listens.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.uow import Statement, UnitOfWork

# What changed, so that a listener acts only where its rules read it.
TRAITS = "traits"
IDENTITY = "identity"
CONSENT = "consent"
MERGE = "merge"
# Anything about the profile, such as an erasure or a restriction.
PROFILE = "profile"
# The profile was made by this change: it was in no segment before.
NEW = "new"
EVENT_PREFIX = "event:"


def event(name: str | None) -> str:
    """The reason for a new event with this name (an unnamed event has the empty name)."""
    return EVENT_PREFIX + (name or "")


class ChangeListener(Protocol):
    def statements(
        self, workspace_id: UUID, changes: Mapping[UUID, frozenset[str]]
    ) -> list[Statement]:
        """The statements that record `changes` (profile id -> reasons) in the same transaction."""
        ...


_listeners: list[ChangeListener] = []


def register(listener: ChangeListener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def statements(workspace_id: UUID, changes: Mapping[UUID, frozenset[str]]) -> list[Statement]:
    """Every listener's statements for `changes`, for a caller that sends its own batch."""
    if not changes:
        return []
    return [s for listener in _listeners for s in listener.statements(workspace_id, changes)]


def touched(uow: UnitOfWork, profile_ids: Iterable[UUID], *reasons: str) -> None:
    """Record that these profiles changed, for the listeners; sent with the unit's next round trip."""
    why = frozenset(reasons)
    found = statements(uow.workspace_id, dict.fromkeys(profile_ids, why))
    if found:
        uow.defer(*found)


@dataclass(frozen=True)
class NewEvents:
    """The events a change stored, column by column (ids as text, as they were written)."""

    ids: list[str]
    times: list[datetime]
    profiles: list[UUID]
    names: list[str | None]


class EventListener(Protocol):
    def event_statements(self, workspace_id: UUID, events: NewEvents) -> list[Statement]:
        """The statements that note these new events in the same transaction."""
        ...


_event_listeners: list[EventListener] = []


def register_events(listener: EventListener) -> None:
    if listener not in _event_listeners:
        _event_listeners.append(listener)


def event_statements(workspace_id: UUID, events: NewEvents) -> list[Statement]:
    """Every event listener's statements for the events a change stored."""
    if not events.ids:
        return []
    return [s for lsn in _event_listeners for s in lsn.event_statements(workspace_id, events)]
