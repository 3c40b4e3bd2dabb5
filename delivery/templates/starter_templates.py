"""The starter templates a workspace can begin from: MJML files in `starters/`, beside this module.

Subjects stay within `SUBJECT_MAX` as written, Liquid included, because the
lint measures the source: the recipient's name goes in the subject, longer
values (a product's name) in the preheader.
"""

from dataclasses import dataclass
from pathlib import Path

from delivery.templates.model import TemplateContent

_FOLDER = Path(__file__).parent / "starters"


@dataclass(frozen=True)
class Starter:
    key: str
    name: str
    subject: str
    preheader: str
    file: str


STARTERS: tuple[Starter, ...] = (
    Starter(
        key="welcome",
        name="Welcome",
        subject="Welcome to {{ workspace.name }}",
        preheader=(
            '{{ profile.traits.first_name | default: "Hi" }}, thanks for signing up. '
            "Here's what to expect."
        ),
        file="welcome.mjml",
    ),
    Starter(
        key="abandoned_cart",
        name="Abandoned cart",
        subject='{{ profile.traits.first_name | default: "Hello" }}, your cart is waiting',
        preheader="Your items are saved at {{ workspace.name }}, ready when you are",
        file="abandoned_cart.mjml",
    ),
    Starter(
        key="browse_abandonment",
        name="Browse abandonment",
        subject='{{ profile.traits.first_name | default: "Hi" }}, still thinking about it?',
        preheader=(
            "{{ profile.computed.lastProductViewed.name | default: "
            '"Everything you looked at" }} is still here when you\'re ready'
        ),
        file="browse_abandonment.mjml",
    ),
    Starter(
        key="post_purchase",
        name="Post-purchase thank you",
        subject='{{ profile.traits.first_name | default: "Hi" }}, thanks for your order',
        preheader=(
            "{% if event.properties.order_id %}Order {{ event.properties.order_id }}"
            "{% else %}Your order{% endif %} is confirmed. We'll let you know when it ships."
        ),
        file="post_purchase.mjml",
    ),
    Starter(
        key="birthday",
        name="Birthday",
        subject='Happy birthday, {{ profile.traits.first_name | default: "friend" }}!',
        preheader="A little gift from {{ workspace.name }} to celebrate your day",
        file="birthday.mjml",
    ),
    Starter(
        key="win_back",
        name="Win-back",
        subject='{{ profile.traits.first_name | default: "Hi" }}, it\'s been a while',
        preheader="A quick hello from everyone at {{ workspace.name }}",
        file="win_back.mjml",
    ),
)


def by_key(key: str) -> Starter:
    for starter in STARTERS:
        if starter.key == key:
            return starter
    known = ", ".join(starter.key for starter in STARTERS)
    raise KeyError(f"no starter template {key!r}; the starters are: {known}")


def content(starter: Starter) -> TemplateContent:
    """The starter as a first version: its subject, preheader and MJML; the text part generated."""
    mjml = (_FOLDER / starter.file).read_text(encoding="utf-8")
    return TemplateContent(subject=starter.subject, mjml=mjml, preheader=starter.preheader)
