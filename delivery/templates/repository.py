"""The templates' SQL, in SQLAlchemy Core."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, insert, select, update

from delivery.sending.tables import campaigns
from delivery.templates.model import TemplateContent, TemplateWarning
from delivery.templates.tables import template_versions, templates
from domain.uow import UnitOfWork


@dataclass(frozen=True)
class TemplateRow:
    id: UUID
    name: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class VersionRow:
    template_id: UUID
    version: int
    content: TemplateContent
    warnings: tuple[TemplateWarning, ...]
    created_at: datetime


def _template(row: Any) -> TemplateRow:
    return TemplateRow(row.id, row.name, row.version, row.created_at, row.updated_at)


def _version(row: Any) -> VersionRow:
    content = TemplateContent(row.subject, row.mjml, row.preheader, row.text)
    warnings = tuple(TemplateWarning(w["code"], w["message"], w.get("line")) for w in row.warnings)
    return VersionRow(row.template_id, row.version, content, warnings, row.created_at)


_TEMPLATE_COLUMNS = [templates.c[n] for n in TemplateRow.__dataclass_fields__]


async def get_many(uow: UnitOfWork, ids: list[UUID]) -> dict[UUID, TemplateRow]:
    rows = await uow.execute(
        select(*_TEMPLATE_COLUMNS).where(
            templates.c.workspace_id == uow.workspace_id, templates.c.id.in_(ids)
        )
    )
    return {row.id: _template(row) for row in rows}


async def get(
    uow: UnitOfWork, template_id: UUID, *, for_update: bool = False
) -> TemplateRow | None:
    query = select(*_TEMPLATE_COLUMNS).where(
        templates.c.workspace_id == uow.workspace_id, templates.c.id == template_id
    )
    if for_update:
        query = query.with_for_update()
    row = (await uow.execute(query)).one_or_none()
    return None if row is None else _template(row)


async def page(uow: UnitOfWork, *, after: UUID | None, limit: int) -> list[TemplateRow]:
    query = select(*_TEMPLATE_COLUMNS).where(templates.c.workspace_id == uow.workspace_id)
    if after is not None:
        query = query.where(templates.c.id > after)
    rows = await uow.execute(query.order_by(templates.c.id).limit(limit))
    return [_template(row) for row in rows]


async def named(uow: UnitOfWork, name: str) -> UUID | None:
    query = select(templates.c.id).where(
        templates.c.workspace_id == uow.workspace_id, templates.c.name == name
    )
    row = (await uow.execute(query)).first()
    return None if row is None else row.id


async def name_taken(uow: UnitOfWork, name: str, *, other_than: UUID | None) -> bool:
    query = select(templates.c.id).where(
        templates.c.workspace_id == uow.workspace_id, templates.c.name == name
    )
    if other_than is not None:
        query = query.where(templates.c.id != other_than)
    return (await uow.execute(query)).first() is not None


async def insert_template(uow: UnitOfWork, template_id: UUID, name: str, at: datetime) -> None:
    await uow.execute(
        insert(templates).values(
            workspace_id=uow.workspace_id, id=template_id, name=name, version=1,
            created_at=at, updated_at=at,
        )
    )  # fmt: skip


async def next_version(uow: UnitOfWork, template_id: UUID, name: str, at: datetime) -> int:
    """Rename the template if asked and number its next version; the caller holds its row lock."""
    row = (
        await uow.execute(
            update(templates)
            .where(templates.c.workspace_id == uow.workspace_id, templates.c.id == template_id)
            .values(name=name, version=templates.c.version + 1, updated_at=at)
            .returning(templates.c.version)
        )
    ).one()
    return int(row.version)


async def insert_version(
    uow: UnitOfWork,
    template_id: UUID,
    version: int,
    content: TemplateContent,
    *,
    warnings: list[TemplateWarning],
    at: datetime,
) -> None:
    await uow.execute(
        insert(template_versions).values(
            workspace_id=uow.workspace_id, template_id=template_id, version=version,
            subject=content.subject, preheader=content.preheader, mjml=content.mjml,
            text=content.text, created_at=at,
            warnings=[{"code": w.code, "message": w.message, "line": w.line} for w in warnings],
        )
    )  # fmt: skip


async def versions(
    uow: UnitOfWork, keys: list[tuple[UUID, int]]
) -> dict[tuple[UUID, int], VersionRow]:
    """The versions asked for, by (template, version)."""
    if not keys:
        return {}
    v = template_versions
    rows = await uow.execute(
        select(v).where(
            v.c.workspace_id == uow.workspace_id,
            v.c.template_id.in_({k[0] for k in keys}),
            v.c.version.in_({k[1] for k in keys}),
        )
    )
    found = {(row.template_id, row.version): _version(row) for row in rows}
    return {key: found[key] for key in keys if key in found}


async def version_page(
    uow: UnitOfWork, template_id: UUID, *, before: int | None, limit: int
) -> list[VersionRow]:
    """The template's versions, newest first."""
    v = template_versions
    query = select(v).where(v.c.workspace_id == uow.workspace_id, v.c.template_id == template_id)
    if before is not None:
        query = query.where(v.c.version < before)
    rows = await uow.execute(query.order_by(v.c.version.desc()).limit(limit))
    return [_version(row) for row in rows]


async def delete_template(uow: UnitOfWork, template_id: UUID) -> None:
    await uow.execute(
        delete(templates).where(
            templates.c.workspace_id == uow.workspace_id, templates.c.id == template_id
        )
    )


async def campaigns_using(uow: UnitOfWork, template_id: UUID) -> list[str]:
    """The names of the campaigns that send this template, which keeps it from being deleted."""
    rows = await uow.execute(
        select(campaigns.c.name)
        .where(
            campaigns.c.workspace_id == uow.workspace_id,
            campaigns.c.template_id == template_id,
            campaigns.c.journey_id.is_(None),
        )
        .order_by(campaigns.c.name)
    )
    return [row.name for row in rows]
