"""Finding data subjects: a port that the CDP context fills in.

Consent and data-subject requests sit below the CDP in the dependency order,
yet must find a person by an identifier and follow their merges. The CDP
registers a directory here at import time; the consent context asks it.
"""

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from domain.personal_data import Subject
from domain.uow import UnitOfWork


class SubjectDirectory(Protocol):
    def normalize(self, kind: str, value: str) -> tuple[str, str]:
        """The identifier in its stored form; raises ValidationError when malformed."""
        ...

    async def find(self, uow: UnitOfWork, kind: str, value: str) -> Subject | None:
        """The subject holding this (already normalized) identifier, if any."""
        ...

    async def of_profile(self, uow: UnitOfWork, profile_id: UUID) -> Subject | None:
        """The subject a profile belongs to; a merged-away id gives its survivor."""
        ...

    async def rectify(
        self, uow: UnitOfWork, subject: Subject, corrections: dict[str, Any], at: datetime
    ) -> list[str]:
        """Set (or, for a null value, remove) traits on the subject; returns the keys changed."""
        ...

    async def restrict(self, uow: UnitOfWork, subject: Subject, at: datetime | None) -> int:
        """Restrict processing of the subject's profiles from `at`, or lift it (None)."""
        ...


_directory: SubjectDirectory | None = None


def register(directory: SubjectDirectory) -> None:
    global _directory  # noqa: PLW0603 - one directory per process, set at import
    _directory = directory


def directory() -> SubjectDirectory:
    if _directory is None:
        raise RuntimeError("no subject directory is registered; import api.contexts")
    return _directory
