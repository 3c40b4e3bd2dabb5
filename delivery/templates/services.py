"""Template use cases: save a version, delete, preview for a profile or for sample data."""

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from uuid import UUID

from email_validator import EmailNotValidError, validate_email

from consent import audit
from consent.model import MARKETING
from delivery.sending import mime
from delivery.sending.message import Envelope
from delivery.sending.relay import Connection, RelaySettings, Result
from delivery.templates import lint, recipients, repository
from delivery.templates import render as rendering
from delivery.templates.compiler import CompiledTemplate, compile_template
from delivery.templates.model import (
    RenderedEmail,
    RenderError,
    Sender,
    TemplateContent,
    TemplateError,
    TemplateWarning,
)
from delivery.templates.repository import TemplateRow, VersionRow
from delivery.templates.starter_templates import Starter
from delivery.templates.starter_templates import content as starter_content
from domain import references, workspaces
from domain.errors import ConflictError, InUseError, NotFoundError, ValidationError
from domain.ids import new_id
from domain.uow import UnitOfWork

MAX_NAME_LENGTH = 200
MAX_PART_LENGTH = 500_000  # characters of MJML or text
TEMPLATE_TYPE = "template"


class TemplateInvalidError(ValidationError):
    """The template does not compile; `line` is the line of the part (`field`) when known."""

    def __init__(self, message: str, *, field: str, line: int | None) -> None:
        super().__init__(f"line {line}: {message}" if line else message, field=field)
        self.line = line


def global_id(template_id: UUID) -> str:
    """The template's id as the API shows it (a Relay global id)."""
    return base64.b64encode(f"Template:{template_id}".encode()).decode()


@dataclass(frozen=True)
class TemplateInput:
    name: str
    subject: str
    mjml: str
    preheader: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Saved:
    template: TemplateRow
    version: VersionRow


def _content(data: TemplateInput) -> tuple[str, TemplateContent]:
    name = data.name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"name must be 1 to {MAX_NAME_LENGTH} characters", field="name")
    if not data.subject.strip():
        raise ValidationError("the subject must not be empty", field="subject")
    for field, value in (("mjml", data.mjml), ("text", data.text or "")):
        if len(value) > MAX_PART_LENGTH:
            raise ValidationError(
                f"{field} must be at most {MAX_PART_LENGTH:,} characters", field=field
            )
    content = TemplateContent(
        subject=data.subject.strip(),
        mjml=data.mjml,
        preheader=(data.preheader or "").strip() or None,
        text=data.text if data.text and data.text.strip() else None,
    )
    return name, content


def check(content: TemplateContent) -> tuple[CompiledTemplate, list[TemplateWarning]]:
    """Compile and lint a version; refused with the part and the line when it does not compile."""
    try:
        compiled = compile_template(content)
    except TemplateError as error:
        raise TemplateInvalidError(error.message, field=error.field, line=error.line) from None
    return compiled, lint.lint(content, compiled)


async def create(uow: UnitOfWork, actor: audit.Actor, data: TemplateInput) -> Saved:
    name, content = _content(data)
    _, warnings = check(content)
    if await repository.name_taken(uow, name, other_than=None):
        raise ConflictError(f'a template named "{name}" exists', field="name")
    template_id, now = new_id(), uow.clock.now()
    await repository.insert_template(uow, template_id, name, now)
    await repository.insert_version(uow, template_id, 1, content, warnings=warnings, at=now)
    await audit.record(
        uow, actor, "template.created", object_type=TEMPLATE_TYPE, object_id=template_id,
        details={"name": name, "version": 1},
    )  # fmt: skip
    return await _saved(uow, template_id, 1)


async def from_starter(uow: UnitOfWork, actor: audit.Actor, starter: Starter) -> Saved | None:
    """Create the starter template, unless the workspace has a template of its name (None)."""
    if await repository.named(uow, starter.name) is not None:
        return None
    page = starter_content(starter)
    return await create(uow, actor, TemplateInput(starter.name, page.subject, page.mjml,
                                                  page.preheader, page.text))  # fmt: skip


async def update(
    uow: UnitOfWork, actor: audit.Actor, template_id: UUID, data: TemplateInput
) -> Saved:
    """Save a new version; the earlier ones stay as they were, for what used them."""
    name, content = _content(data)
    _, warnings = check(content)
    if await repository.get(uow, template_id, for_update=True) is None:
        raise NotFoundError("no such template", field="id")
    if await repository.name_taken(uow, name, other_than=template_id):
        raise ConflictError(f'a template named "{name}" exists', field="name")
    now = uow.clock.now()
    version = await repository.next_version(uow, template_id, name, now)
    await repository.insert_version(uow, template_id, version, content, warnings=warnings, at=now)
    await audit.record(
        uow, actor, "template.updated", object_type=TEMPLATE_TYPE, object_id=template_id,
        details={"name": name, "version": version},
    )  # fmt: skip
    return await _saved(uow, template_id, version)


async def _saved(uow: UnitOfWork, template_id: UUID, version: int) -> Saved:
    template = await repository.get(uow, template_id)
    found = await repository.versions(uow, [(template_id, version)])
    if template is None or (template_id, version) not in found:
        raise NotFoundError("no such template", field="id")
    return Saved(template, found[(template_id, version)])


async def delete(uow: UnitOfWork, actor: audit.Actor, template_id: UUID) -> None:
    """Delete a template and its versions; refused (IN_USE) while a campaign sends it."""
    current = await repository.get(uow, template_id, for_update=True)
    if current is None:
        raise NotFoundError("no such template", field="id")
    users = [f'campaign "{name}"' for name in await repository.campaigns_using(uow, template_id)]
    users += await references.users_of(uow, "template", template_id)
    if users:
        raise InUseError(f"the template is used by {', '.join(users)}")
    await repository.delete_template(uow, template_id)
    await audit.record(
        uow, actor, "template.deleted", object_type=TEMPLATE_TYPE, object_id=template_id,
        details={"name": current.name},
    )  # fmt: skip


async def current_version(uow: UnitOfWork, template_id: UUID) -> Saved:
    template = await repository.get(uow, template_id)
    if template is None:
        raise NotFoundError("no such template", field="id")
    return await _saved(uow, template_id, template.version)


async def sender(uow: UnitOfWork) -> Sender:
    workspace = await workspaces.current_workspace(uow)
    return Sender(workspace.name, workspace.postal_address)


def compiled_version(workspace_id: UUID, version: VersionRow) -> CompiledTemplate:
    """The version's compilation, cached in this process by (workspace, template, version)."""
    key = (workspace_id, version.template_id, version.version)
    return rendering.cached(key, lambda: version.content)


async def preview(
    uow: UnitOfWork,
    version: VersionRow,
    *,
    links_for: recipients.LinkMaker,
    profile_id: UUID | None = None,
    data: Mapping[str, Any] | None = None,
    purpose: str = MARKETING,
) -> RenderedEmail:
    """Exactly what would be sent: for a profile (its data, links and recommendations), or for
    sample data shaped like the template's scope; with neither, for an empty profile."""
    if profile_id is not None and data is not None:
        raise ValidationError("give a profile or sample data, not both", field="data")
    if profile_id is not None:
        found = await recipients.load(uow, [profile_id], purpose=purpose, links_for=links_for)
        if profile_id not in found:
            raise NotFoundError("no such profile", field="profileId")
        recipient = found[profile_id]
    else:
        if data is not None and not isinstance(data, Mapping):
            raise ValidationError("data must be a JSON object", field="data")
        recipient = recipients.from_data(data or {})
    compiled = compiled_version(uow.workspace_id, version)
    try:
        return rendering.render(compiled, recipient, await sender(uow))
    except RenderError as error:
        raise ValidationError(
            str(error), field="data" if data is not None else "profileId"
        ) from None


async def set_postal_address(uow: UnitOfWork, actor: audit.Actor, address: str | None) -> None:
    """The sender's postal address, which every commercial email carries (CAN-SPAM)."""
    cleaned = (address or "").strip() or None
    if cleaned is not None and len(cleaned) > 500:  # noqa: PLR2004 - a postal address's length
        raise ValidationError(
            "the postal address must be at most 500 characters", field="postalAddress"
        )
    await workspaces.set_postal_address(uow, cleaned)
    await audit.record(
        uow, actor, "workspace.postal_address_set", object_type="workspace",
        object_id=uow.workspace_id, details={"postal_address": cleaned},
    )  # fmt: skip


@dataclass(frozen=True)
class Relay:
    """Where test emails go, and whom they come from."""

    settings: RelaySettings
    sender: str


TEST_HEADER = "X-CDP-Test"


async def send_test(
    uow: UnitOfWork,
    actor: audit.Actor,
    version: VersionRow,
    *,
    to: str,
    relay: Relay,
    links_for: recipients.LinkMaker,
    profile_id: UUID | None = None,
) -> str:
    """Render the version (for a profile, or with its defaults) and send it to `to`, marked as a
    test; returns the Message-ID."""
    try:
        address = validate_email(to.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValidationError(f"not an email address: {error}", field="to") from None
    email = await preview(uow, version, links_for=links_for, profile_id=profile_id, data=None)
    name, sender = parseaddr(relay.sender)
    identifier = make_msgid(domain=sender.rpartition("@")[2] or None)
    data = mime.compose(
        [
            ("From", mime.mailbox(sender, name or None)),
            ("To", address),
            ("Subject", mime.text_value(f"[Test] {email.subject}")),
            ("Date", format_datetime(uow.clock.now())),
            ("Message-ID", identifier),
            (TEST_HEADER, "true"),
        ],
        email.text,
        email.html,
    )
    envelope = Envelope(sender, address, data, identifier)
    connection = Connection(relay.settings)
    try:
        outcome = await connection.send(envelope)
    finally:
        await connection.close()
    if outcome.result is not Result.SENT:
        raise ValidationError(
            f"the SMTP relay at {relay.settings.host}:{relay.settings.port} did not take the "
            f"message: {outcome.reply}",
            field="to",
        )
    await audit.record(
        uow, actor, "template.test_sent", object_type=TEMPLATE_TYPE,
        object_id=version.template_id, details={"version": version.version},
    )  # fmt: skip
    return identifier
