"""Templates in GraphQL: the template, its versions, warnings, previews and the input."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from api.graphql import connection
from api.graphql.ids import local_id
from api.graphql.nodes import load_nodes
from api.graphql.scalars import JSON
from delivery.templates import recipients, services
from delivery.templates import repository as template_store
from delivery.templates.model import RenderedEmail as Rendered
from delivery.templates.model import TemplateWarning as Warning_
from delivery.templates.repository import TemplateRow, VersionRow
from domain.credentials import MESSAGES_READ
from domain.errors import ValidationError


@strawberry.type
class TemplateWarning:
    code: str
    message: str
    line: int | None = strawberry.field(description="The line of the MJML, when it has one.")

    @classmethod
    def of(cls, warning: Warning_) -> "TemplateWarning":
        return cls(code=warning.code, message=warning.message, line=warning.line)


@strawberry.type
class RenderedEmail:
    subject: str
    preheader: str | None
    html: str
    text: str
    warnings: list[TemplateWarning]

    @classmethod
    def of(cls, email: Rendered, warnings: Iterable[Warning_]) -> "RenderedEmail":
        return cls(
            subject=email.subject,
            preheader=email.preheader,
            html=email.html,
            text=email.text,
            warnings=[TemplateWarning.of(w) for w in warnings],
        )


@strawberry.input
class TemplateInput:
    name: str
    subject: str
    mjml: str
    preheader: str | None = None
    text: str | None = strawberry.field(
        default=None,
        description="The plain-text part in Liquid; generated from the HTML when null.",
    )

    def to_service(self) -> services.TemplateInput:
        return services.TemplateInput(self.name, self.subject, self.mjml, self.preheader, self.text)


async def _preview(
    info: Info, version: VersionRow, profile_id: relay.GlobalID | None, data: JSON | None
) -> RenderedEmail:
    uow = await info.context.require(MESSAGES_READ)
    state = info.context.state
    links_for = recipients.LinkMaker(state.keys, state.settings.base_url)
    if data is not None and not isinstance(data, dict):
        raise ValidationError("data must be a JSON object", field="data")
    email = await services.preview(
        uow,
        version,
        links_for=links_for,
        profile_id=None if profile_id is None else local_id(profile_id, "Profile", "profileId"),
        data=data,
    )
    return RenderedEmail.of(email, version.warnings)


@strawberry.type(name="TemplateVersion")
class TemplateVersionNode(relay.Node):
    """One saved version of a template, which never changes."""

    id: relay.NodeID[str]
    version: int
    subject: str
    preheader: str | None
    mjml: str
    text: str | None
    warnings: list[TemplateWarning]
    created_at: datetime
    row: strawberry.Private[VersionRow]

    @classmethod
    def from_row(cls, row: VersionRow) -> "TemplateVersionNode":
        content = row.content
        return cls(
            id=f"{row.template_id}:{row.version}",
            version=row.version,
            subject=content.subject,
            preheader=content.preheader,
            mjml=content.mjml,
            text=content.text,
            warnings=[TemplateWarning.of(w) for w in row.warnings],
            created_at=row.created_at,
            row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["TemplateVersionNode | None"]:
        uow = await info.context.require(MESSAGES_READ)
        keys: list[tuple[Any, int] | None] = [_version_key(raw) for raw in node_ids]
        found = await template_store.versions(uow, [k for k in keys if k is not None])
        return [cls.from_row(found[k]) if k is not None and k in found else None for k in keys]

    @strawberry.field(description="This version rendered for a profile, or for sample data.")
    async def preview(
        self, info: Info, profile_id: relay.GlobalID | None = None, data: JSON | None = None
    ) -> RenderedEmail:
        return await _preview(info, self.row, profile_id, data)


def _version_key(raw: str) -> tuple[Any, int] | None:
    from domain.ids import parse_uuid  # noqa: PLC0415 - only here

    template, _, number = raw.partition(":")
    key = parse_uuid(template)
    return (key, int(number)) if key is not None and number.isdigit() else None


@strawberry.type(name="Template")
class TemplateNode(relay.Node):
    id: relay.NodeID[str]
    name: str
    version: int = strawberry.field(description="The newest version's number.")
    created_at: datetime
    updated_at: datetime
    row: strawberry.Private[TemplateRow]
    current: strawberry.Private[VersionRow | None] = None

    @classmethod
    def from_row(cls, row: TemplateRow, current: VersionRow | None = None) -> "TemplateNode":
        return cls(
            id=str(row.id),
            name=row.name,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row=row,
            current=current,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list["TemplateNode | None"]:
        return await load_nodes(
            info,
            loader_name="template",
            node_ids=node_ids,
            scope=MESSAGES_READ,
            fetch=template_store.get_many,
            to_node=cls.from_row,
        )

    async def _current(self, info: Info) -> VersionRow:
        if self.current is None:
            uow = await info.context.require(MESSAGES_READ)
            key = (self.row.id, self.row.version)
            self.current = (await template_store.versions(uow, [key]))[key]
        return self.current

    @strawberry.field
    async def subject(self, info: Info) -> str:
        return (await self._current(info)).content.subject

    @strawberry.field
    async def preheader(self, info: Info) -> str | None:
        return (await self._current(info)).content.preheader

    @strawberry.field
    async def mjml(self, info: Info) -> str:
        return (await self._current(info)).content.mjml

    @strawberry.field(
        description="The plain-text part as written; null when generated from the HTML."
    )
    async def text(self, info: Info) -> str | None:
        return (await self._current(info)).content.text

    @strawberry.field(description="The lints of the newest version.")
    async def warnings(self, info: Info) -> list[TemplateWarning]:
        return [TemplateWarning.of(w) for w in (await self._current(info)).warnings]

    @strawberry.field(description="Every saved version, newest first.")
    async def versions(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> relay.Connection[TemplateVersionNode]:
        uow = await info.context.require(MESSAGES_READ)
        limit = connection.page_size(first)
        before = _version_cursor(after)
        rows = await template_store.version_page(uow, self.row.id, before=before, limit=limit + 1)
        return connection.build(
            rows, limit, to_node=TemplateVersionNode.from_row, after=after,
            cursor=lambda r: f"version:{r.version}",
        )  # fmt: skip

    @strawberry.field(
        description=(
            "The newest version rendered exactly as it would be sent: for a profile (its "
            "traits, computed traits, segments, links and recommendations), or for sample "
            "data shaped like the template's scope (`profile`, `event`, `recommendations`)."
        )
    )
    async def preview(
        self, info: Info, profile_id: relay.GlobalID | None = None, data: JSON | None = None
    ) -> RenderedEmail:
        return await _preview(info, await self._current(info), profile_id, data)


def _version_cursor(after: str | None) -> int | None:
    if after is None:
        return None
    prefix, _, number = after.partition(":")
    if prefix != "version" or not number.isdigit():
        raise ValidationError("malformed cursor", field="after")
    return int(number)
