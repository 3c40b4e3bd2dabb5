"""The CDP's answer to `domain.subjects`: who holds an identifier, and what they hold."""

from datetime import datetime
from typing import Any
from uuid import UUID

from cdp import identifiers, profile_store, queries, repository
from cdp.model import Identifier
from cdp.traits import stamp
from domain import subjects
from domain.errors import ConflictError, ValidationError
from domain.personal_data import Subject
from domain.uow import UnitOfWork


class ProfileDirectory:
    def normalize(self, kind: str, value: str) -> tuple[str, str]:
        try:
            found = identifiers.normalize(kind, value)
        except identifiers.IdentifierError as exc:
            raise ValidationError(str(exc), field="identifier") from exc
        return found.kind, found.value

    async def find(self, uow: UnitOfWork, kind: str, value: str) -> Subject | None:
        held = await queries.profile_ids_by_identifier(uow, [Identifier(kind, value)])
        profile_id = held.get(Identifier(kind, value))
        return None if profile_id is None else await self.of_profile(uow, profile_id)

    async def of_profile(self, uow: UnitOfWork, profile_id: UUID) -> Subject | None:
        rows = await repository.subject_profiles(uow, profile_id)
        if not rows or not rows[0].live:
            return None
        ids = tuple(r.id for r in rows)
        held = await queries.identities_of(uow, ids)
        pairs = sorted({(i.kind, i.value) for group in held.values() for i in group})
        return Subject(uow.workspace_id, ids, tuple(pairs))

    async def rectify(
        self, uow: UnitOfWork, subject: Subject, corrections: dict[str, Any], at: datetime
    ) -> list[str]:
        survivor = subject.profile_id
        if survivor is None:
            return []
        states, _ = await profile_store.load_profiles(uow, [survivor])
        state = states.get(survivor)
        if state is None:
            # Merged away since the subject was read: fail, so that the request
            # is tried again on the new survivor instead of completing unapplied.
            raise ConflictError("the profile was merged while being rectified; try again")
        # A correction wins over any event time, even one stamped in the future.
        for key, value in corrections.items():
            if value is None:
                state.traits.pop(key, None)
            else:
                state.traits[key] = value
            state.meta[key] = {"at": stamp(at), "source": "rectification"}
        await profile_store.save_states(uow, states, [survivor])
        return sorted(corrections)

    async def restrict(self, uow: UnitOfWork, subject: Subject, at: datetime | None) -> int:
        if not subject.profile_ids:
            return 0
        return await repository.restrict_profiles(uow, subject.profile_ids, at)


subjects.register(ProfileDirectory())
