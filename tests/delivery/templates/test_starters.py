"""The starter templates: each compiles without warnings and reads well for a known customer
and for a profile that knows nothing, where the defaults must carry the copy."""

import pytest

from delivery.templates.compiler import compile_template
from delivery.templates.lint import lint
from delivery.templates.model import (
    SUBJECT_MAX,
    Recipient,
    RecipientProfile,
    RenderedEmail,
    Sender,
)
from delivery.templates.render import render
from delivery.templates.starter_templates import STARTERS, Starter, by_key, content

SENDER = Sender("Shoe Shop", "1 Main St, 10115 Berlin")
UNSUBSCRIBE = "https://cdp.example/u/abc"
PREFERENCES = "https://cdp.example/p/abc"
TIMES = "\u00d7"


def _product(slug: str, name: str, price: str) -> dict[str, str]:
    return {
        "product_id": slug,
        "name": name,
        "price": price,
        "url": f"https://shop.example/p/{slug}",
        "image_url": f"https://shop.example/i/{slug}.jpg",
    }


TRAIL = _product("trail", "Trail shoe", "€89.00")
JACKET = _product("jacket", "Rain jacket", "€120.00")
SOCK = _product("sock", "Wool sock", "€9.00")
CAP = _product("cap", "Running cap", "€19.00")

KNOWN = Recipient(
    RecipientProfile(
        "p-1",
        {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com"},
        {"cart": [{**TRAIL, "quantity": 2}], "lastProductViewed": TRAIL, "orderCount": 3},
        ("VIP",),
    ),
    unsubscribe_url=UNSUBSCRIBE,
    preferences_url=PREFERENCES,
    event={
        "name": "Order Completed",
        "properties": {
            "order_id": "1042",
            "total": "€187.00",
            "products": [
                {"name": "Trail shoe", "price": "€89.00", "quantity": 2},
                {"name": "Wool sock", "price": "€9.00"},
            ],
            "order_url": "https://shop.example/orders/1042",
            "coupon": "ANN-15",
            "expires_at": "2025-06-30",
        },
    },
    recommendations={"recently_viewed": [TRAIL, JACKET], "popular": [SOCK, CAP]},
)
EMPTY = Recipient(
    RecipientProfile("p-2", {}, {}), unsubscribe_url=UNSUBSCRIBE, preferences_url=PREFERENCES
)

# (subject for KNOWN, subject for EMPTY)
SUBJECTS = {
    "welcome": ("Welcome to Shoe Shop", "Welcome to Shoe Shop"),
    "abandoned_cart": ("Ann, your cart is waiting", "Hello, your cart is waiting"),
    "browse_abandonment": ("Ann, still thinking about it?", "Hi, still thinking about it?"),
    "post_purchase": ("Ann, thanks for your order", "Hi, thanks for your order"),
    "birthday": ("Happy birthday, Ann!", "Happy birthday, friend!"),
    "win_back": ("Ann, it's been a while", "Hi, it's been a while"),
}
PERSONAL = {
    "welcome": (
        "Hi Ann, welcome to Shoe Shop!", "use code ANN-15", "Popular right now", "Wool sock",
        f"[Choose your topics]({PREFERENCES})",
    ),
    "abandoned_cart": ("Hi Ann, you left something behind", "Trail shoe", f"2 {TIMES} €89.00",
                       "Return to your cart"),
    "browse_abandonment": (
        "Still thinking about Trail shoe?", "€89.00",
        "[Take another look](https://shop.example/p/trail)", "Also on your list", "Rain jacket",
    ),
    "post_purchase": (
        "Hi Ann, thanks for your order!", "your order 1042 and", "Order summary",
        f"\nTrail shoe: 2 {TIMES} €89.00\nWool sock: 1 {TIMES} €9.00\nTotal: €187.00\n",
        "[View your order](https://shop.example/orders/1042)",
    ),
    "birthday": (
        "Happy birthday, Ann!", "ANN-15", "Enter it at checkout before June 30.",
        "Running cap", "[Shop now](https://shop.example/p/cap)",
    ),
    "win_back": (
        "We've missed you, Ann", "Popular right now", "Wool sock",
        "[Shop now](https://shop.example/p/sock)", f"[Update my preferences]({PREFERENCES})",
    ),
}  # fmt: skip
DEFAULTS = {
    "welcome": ("Hi there, welcome to Shoe Shop!", f"[Choose your topics]({PREFERENCES})"),
    "abandoned_cart": ("Hi there, you left something behind",),
    "browse_abandonment": (
        "Still thinking about it?", "Hi there, thanks for stopping by.",
        "Just reply to this email",
    ),
    "post_purchase": ("Hi there, thanks for your order!", "We've received your order and"),
    "birthday": ("Happy birthday, friend!", "BIRTHDAY", "Enter it at checkout."),
    "win_back": ("We've missed you, friend", f"[Update my preferences]({PREFERENCES})"),
}  # fmt: skip
# Sections that need data the empty profile lacks, so they must not show up half-filled.
ONLY_WITH_DATA = {
    "welcome": ("Popular right now", "welcome gift"),
    "abandoned_cart": ("Trail shoe", "Return to your cart", "Popular this week"),
    "browse_abandonment": ("Take another look", "Also on your list"),
    "post_purchase": ("Order summary", "Total", "View your order"),
    "birthday": ("Shop now", "treat yourself", " before "),
    "win_back": ("Popular right now", "Shop now"),
}

KEYS = [starter.key for starter in STARTERS]


def _render(starter: Starter, recipient: Recipient) -> RenderedEmail:
    return render(compile_template(content(starter)), recipient, SENDER)


def _assert_complete(email: RenderedEmail) -> None:
    for part in (email.html, email.text, email.subject, email.preheader or ""):
        assert "{{" not in part
        assert "{%" not in part
    assert 'href=""' not in email.html  # no link or button that leads nowhere
    assert "<title>" + email.subject + "</title>" in email.html.replace("&#39;", "'")
    assert f"[Unsubscribe]({UNSUBSCRIBE})" in email.text
    assert f"[Email preferences]({PREFERENCES})" in email.text
    assert "Shoe Shop, 1 Main St, 10115 Berlin" in email.text
    assert len(email.subject) <= SUBJECT_MAX


def test_there_are_six_starters_with_unique_keys() -> None:
    assert len(STARTERS) == 6
    assert len(set(KEYS)) == len(KEYS)
    assert set(KEYS) == set(SUBJECTS)


def test_a_starter_is_found_by_key_and_an_unknown_key_is_named_in_the_error() -> None:
    assert by_key("birthday").file == "birthday.mjml"
    with pytest.raises(KeyError, match=r"'anniversary'.*welcome"):
        by_key("anniversary")


@pytest.mark.parametrize("starter", STARTERS, ids=KEYS)
def test_a_starter_compiles_without_warnings(starter: Starter) -> None:
    source = content(starter)
    assert lint(source, compile_template(source)) == []
    assert 5 <= source.mjml.count("<mj-section") <= 9
    assert "<mj-button" in source.mjml
    assert "{{ workspace.name }}" in source.mjml


@pytest.mark.parametrize("starter", STARTERS, ids=KEYS)
def test_a_known_customer_sees_their_own_values(starter: Starter) -> None:
    email = _render(starter, KNOWN)
    _assert_complete(email)
    assert email.subject == SUBJECTS[starter.key][0]
    for expected in PERSONAL[starter.key]:
        assert expected in email.text, expected
    assert PERSONAL[starter.key][0] in email.html


@pytest.mark.parametrize("starter", STARTERS, ids=KEYS)
def test_an_empty_profile_still_reads_well_with_the_defaults(starter: Starter) -> None:
    email = _render(starter, EMPTY)
    _assert_complete(email)
    assert email.subject == SUBJECTS[starter.key][1]
    for expected in DEFAULTS[starter.key]:
        assert expected in email.text, expected
    for absent in ONLY_WITH_DATA[starter.key]:
        assert absent not in email.text, absent
    assert DEFAULTS[starter.key][0] in email.html


def test_the_preheaders_use_the_values_when_there_are_some() -> None:
    browse, order = by_key("browse_abandonment"), by_key("post_purchase")
    assert _render(browse, KNOWN).preheader == "Trail shoe is still here when you're ready"
    assert _render(browse, EMPTY).preheader == (
        "Everything you looked at is still here when you're ready"
    )
    assert _render(order, KNOWN).preheader == (
        "Order 1042 is confirmed. We'll let you know when it ships."
    )
    assert _render(order, EMPTY).preheader == (
        "Your order is confirmed. We'll let you know when it ships."
    )
