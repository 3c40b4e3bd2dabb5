"""The personal-data registry.

Every table that holds personal data marks those columns with
`info={"personal_data": True}` and registers a handler that exports and
erases a data subject's rows. Data-subject requests go through the registry
only, so a store that is not registered cannot be missed silently: a test
fails when a marked column has no handler.
"""

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import MetaData

from domain.uow import UnitOfWork

PERSONAL_DATA = "personal_data"


@dataclass(frozen=True)
class Subject:
    """A data subject: one surviving profile and every id merged into it.

    `identifiers` are the normalized (kind, value) pairs the subject holds, and
    `digests` their keyed hashes, by which suppression entries are found; a
    subject that is only an identifier (nothing held) has no profile ids.
    """

    workspace_id: UUID
    profile_ids: tuple[UUID, ...]
    identifiers: tuple[tuple[str, str], ...] = ()
    digests: tuple[bytes, ...] = ()

    @property
    def profile_id(self) -> UUID | None:
        """The surviving profile, if any."""
        return self.profile_ids[0] if self.profile_ids else None


class PersonalDataHandler(Protocol):
    """Exports and erases one table's personal data for a subject."""

    table: str
    category: str
    purpose: str
    retention: str

    async def export(self, uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]: ...

    async def erase(self, uow: UnitOfWork, subject: Subject) -> int: ...


class RegistryError(ValueError):
    pass


class PersonalDataRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, PersonalDataHandler] = {}

    def register(self, handler: PersonalDataHandler) -> PersonalDataHandler:
        if handler.table in self._handlers:
            raise RegistryError(f"table {handler.table!r} already has a personal-data handler")
        self._handlers[handler.table] = handler
        return handler

    def handlers(self) -> list[PersonalDataHandler]:
        return [self._handlers[name] for name in sorted(self._handlers)]

    def covered_tables(self) -> frozenset[str]:
        return frozenset(self._handlers)


def personal_columns(metadata: MetaData) -> dict[str, list[str]]:
    """Table name -> columns marked as personal data."""
    found: dict[str, list[str]] = {}
    for table in metadata.sorted_tables:
        marked = [col.name for col in table.columns if col.info.get(PERSONAL_DATA)]
        if marked:
            found[table.name] = marked
    return found


def uncovered(metadata: MetaData, registry: PersonalDataRegistry) -> dict[str, list[str]]:
    covered = registry.covered_tables()
    return {t: cols for t, cols in personal_columns(metadata).items() if t not in covered}


registry = PersonalDataRegistry()
