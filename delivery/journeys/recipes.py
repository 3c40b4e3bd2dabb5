"""The seed scenarios, each one mutation away: a DRAFT journey on the starter templates.

Every recipe sends with the `marketing` purpose, so the contact gate, the
frequency cap and quiet hours apply. Starter templates the workspace lacks
are created; one it has (by name) is used as it is now.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from consent import audit
from delivery.journeys import services
from delivery.journeys.repository import JourneyRow
from delivery.sending import campaigns as campaign_rules
from delivery.templates import repository as template_store
from delivery.templates import services as template_services
from delivery.templates.starter_templates import by_key
from domain.uow import UnitOfWork

PURPOSE = "marketing"
Send = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class Recipe:
    name: str
    starters: tuple[str, ...]
    build: Callable[[Send], dict[str, Any]]


def _welcome(send: Send) -> dict[str, Any]:
    return {"trigger": {"event": "Signed Up"}, "reentry": "never",
            "goal": {"event": "Order Completed", "withinDays": 14},
            "steps": [send("welcome")]}  # fmt: skip


def _abandoned_cart(send: Send) -> dict[str, Any]:
    # Reminders 1 h, 24 h and 72 h after the cart, each wait counted from the one before.
    return {"trigger": {"event": "Product Added"}, "reentry": "after_exit",
            "exitOn": [{"event": "Order Completed"}],
            "goal": {"event": "Order Completed", "withinDays": 7},
            "steps": [{"wait": {"hours": 1}}, send("abandoned_cart"),
                      {"wait": {"hours": 23}}, send("abandoned_cart"),
                      {"wait": {"hours": 48}}, send("abandoned_cart")]}  # fmt: skip


def _browse_abandonment(send: Send) -> dict[str, Any]:
    return {"trigger": {"event": "Product Viewed"}, "reentry": "after_exit",
            "exitOn": [{"event": "Product Added"}, {"event": "Order Completed"}],
            "goal": {"event": "Order Completed", "withinDays": 7},
            "steps": [{"wait": {"minutes": 30}}, send("browse_abandonment")]}  # fmt: skip


def _post_purchase(send: Send) -> dict[str, Any]:
    return {"trigger": {"event": "Order Completed"}, "reentry": "always",
            "goal": {"event": "Order Completed", "withinDays": 30},
            "steps": [{"wait": {"hours": 1}}, send("post_purchase")]}  # fmt: skip


def _birthday(send: Send) -> dict[str, Any]:
    return {"trigger": {"dateTrait": "birthday", "annual": True, "at": "09:00"},
            "reentry": "always", "steps": [send("birthday")]}  # fmt: skip


def _win_back(send: Send) -> dict[str, Any]:
    return {"trigger": {"inactiveDays": 90}, "reentry": "after_exit",
            "goal": {"event": "Order Completed", "withinDays": 14},
            "steps": [send("win_back")]}  # fmt: skip


RECIPES: dict[str, Recipe] = {
    "WELCOME": Recipe("Welcome", ("welcome",), _welcome),
    "ABANDONED_CART": Recipe("Abandoned cart", ("abandoned_cart",), _abandoned_cart),
    "BROWSE_ABANDONMENT": Recipe(
        "Browse abandonment", ("browse_abandonment",), _browse_abandonment
    ),
    "POST_PURCHASE": Recipe("Post-purchase", ("post_purchase",), _post_purchase),
    "BIRTHDAY": Recipe("Birthday", ("birthday",), _birthday),
    "WIN_BACK": Recipe("Win-back", ("win_back",), _win_back),
}


async def _free_name(uow: UnitOfWork, name: str) -> str:
    candidate, n = name, 1
    while await services.name_taken(uow, candidate):
        n += 1
        candidate = f"{name} ({n})"
    return candidate


async def create(uow: UnitOfWork, actor: audit.Actor, recipe: str, from_email: str) -> JourneyRow:
    """The recipe's journey, as a DRAFT, with its starter templates."""
    chosen = RECIPES[recipe]
    await campaign_rules.sending_domain(uow, from_email)  # refused with field "fromEmail"
    templates: dict[str, UUID] = {}
    for key in chosen.starters:
        starter = by_key(key)
        await template_services.from_starter(uow, actor, starter)
        found = await template_store.named(uow, starter.name)
        if found is None:
            raise RuntimeError(f"the starter template {starter.name!r} was not created")
        templates[key] = found

    def send(key: str) -> dict[str, Any]:
        return {"send": {"templateId": template_services.global_id(templates[key]), "purpose": PURPOSE,
                         "fromEmail": from_email}}  # fmt: skip

    name = await _free_name(uow, chosen.name)
    return await services.create(uow, actor, services.JourneyInput(name, chosen.build(send)))
