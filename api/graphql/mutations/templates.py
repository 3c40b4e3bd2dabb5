"""Template mutations: create, update (a new version), delete; and the sender's postal address."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from strawberry import relay
from strawberry.types import Info

from api.graphql.ids import local_id
from api.graphql.types.input_error import InputError
from api.graphql.types.payloads import (
    DeleteTemplatePayload,
    SendTestEmailPayload,
    SetPostalAddressPayload,
    TemplatePayload,
)
from api.graphql.types.template import TemplateInput, TemplateNode
from consent import audit
from delivery.templates import recipients, services
from domain.credentials import ADMIN, MESSAGES_WRITE
from domain.errors import DomainError
from domain.uow import UnitOfWork

T = TypeVar("T")


async def _act(
    info: Info, scope: str, act: Callable[[UnitOfWork, audit.Actor], Awaitable[T]]
) -> T | list[InputError]:
    """Run one change as the caller and commit it; its errors are the answer otherwise."""
    uow = await info.context.require(scope)
    actor = audit.Actor.of(await info.context.principal())
    try:
        result = await act(uow, actor)
    except DomainError as error:
        return [InputError.from_domain(error)]
    await uow.commit()
    return result


def _payload(done: services.Saved | list[InputError]) -> TemplatePayload:
    if isinstance(done, list):
        return TemplatePayload(errors=done)
    return TemplatePayload(template=TemplateNode.from_row(done.template, done.version))


async def create_template(
    info: Info,
    input: TemplateInput,  # noqa: A002 - the contract's name
) -> TemplatePayload:
    """Save a template as its version 1; invalid MJML or Liquid is refused with its line."""
    return _payload(
        await _act(
            info, MESSAGES_WRITE, lambda uow, actor: services.create(uow, actor, input.to_service())
        )
    )


async def update_template(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
    input: TemplateInput,  # noqa: A002 - the contract's name
) -> TemplatePayload:
    """Save a new version; what was sent keeps its own."""

    async def act(uow: UnitOfWork, actor: audit.Actor) -> services.Saved:
        return await services.update(uow, actor, local_id(id, "Template"), input.to_service())

    return _payload(await _act(info, MESSAGES_WRITE, act))


async def delete_template(
    info: Info,
    id: relay.GlobalID,  # noqa: A002 - Relay's name
) -> DeleteTemplatePayload:
    """Delete a template and its versions."""

    async def act(uow: UnitOfWork, actor: audit.Actor) -> relay.GlobalID:
        await services.delete(uow, actor, local_id(id, "Template"))
        return id

    done = await _act(info, MESSAGES_WRITE, act)
    if isinstance(done, list):
        return DeleteTemplatePayload(errors=done)
    return DeleteTemplatePayload(deleted_id=done)


async def set_postal_address(
    info: Info, postal_address: str | None = None
) -> SetPostalAddressPayload:
    """The sender's postal address, which templates show as {{ workspace.postal_address }}."""

    async def act(uow: UnitOfWork, actor: audit.Actor) -> str | None:
        await services.set_postal_address(uow, actor, postal_address)
        return (postal_address or "").strip() or None

    done = await _act(info, ADMIN, act)
    if isinstance(done, list):
        return SetPostalAddressPayload(errors=done)
    return SetPostalAddressPayload(postal_address=done)


async def send_test_email(
    info: Info,
    template_id: relay.GlobalID,
    to: str,
    profile_id: relay.GlobalID | None = None,
) -> SendTestEmailPayload:
    """Send the template's newest version to `to`, rendered for a profile or with its defaults,
    with "[Test]" before the subject and an X-CDP-Test header."""
    state = info.context.state
    relay_to = services.Relay(state.settings.relay(), state.settings.mail_from)
    links_for = recipients.LinkMaker(state.keys, state.settings.base_url)

    async def act(uow: UnitOfWork, actor: audit.Actor) -> str:
        saved = await services.current_version(uow, local_id(template_id, "Template", "templateId"))
        person = None if profile_id is None else local_id(profile_id, "Profile", "profileId")
        return await services.send_test(
            uow, actor, saved.version, to=to, relay=relay_to, links_for=links_for, profile_id=person
        )

    done = await _act(info, MESSAGES_WRITE, act)
    if isinstance(done, list):
        return SendTestEmailPayload(errors=done)
    return SendTestEmailPayload(sent=True, message_id=done)
