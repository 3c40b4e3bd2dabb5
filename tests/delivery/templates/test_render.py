"""Templates compiled once and rendered per recipient: content, escaping, errors with lines, limits."""

from pathlib import Path

import mjml
import pytest

from delivery.templates import render as rendering
from delivery.templates.compiler import compile_template
from delivery.templates.model import (
    Recipient,
    RecipientProfile,
    RenderError,
    Sender,
    TemplateContent,
    TemplateError,
)

STARTER = Path(__file__).parents[3] / "delivery" / "templates" / "starters" / "abandoned_cart.mjml"
SENDER = Sender("Shoe Shop", "1 Main St, 10115 Berlin")
CART = [
    {"name": "Trail shoe", "price": "€89.00", "url": "https://shop.example/p/1",
     "image_url": "https://shop.example/i/1.jpg", "quantity": 2},
    {"name": "Wool sock", "price": "€9.00", "url": "javascript:alert(1)",
     "image_url": "https://shop.example/i/2.jpg"},
]  # fmt: skip


def _content(**changes: str) -> TemplateContent:
    values = {
        "subject": '{{ profile.traits.first_name | default: "Hello" }}, your cart is waiting',
        "preheader": "Saved for you",
        "mjml": STARTER.read_text(),
    }
    values.update(changes)
    return TemplateContent(**values)


def _recipient(traits: dict, computed: dict | None = None, segments: tuple = ()) -> Recipient:
    profile = RecipientProfile("p-1", traits, computed or {}, segments)
    return Recipient(
        profile,
        unsubscribe_url="https://cdp.example/u/abc?x=1&y=2",
        preferences_url="https://cdp.example/p/abc",
    )


def test_a_recipient_sees_their_name_their_cart_and_the_sections_their_traits_select():
    compiled = compile_template(_content())
    pro = rendering.render(
        compiled, _recipient({"first_name": "Ann", "plan": "pro"}, {"cart": CART}), SENDER
    )
    assert pro.subject == "Ann, your cart is waiting"
    assert "Hi Ann, you left something behind" in pro.html
    assert "Trail shoe" in pro.html
    assert "2 \u00d7 €89.00" in pro.html
    assert "shipping on this order is on us" in pro.html
    assert "Trail shoe" in pro.text
    assert "Ann" in pro.text
    assert "<title>Ann, your cart is waiting</title>" in pro.html
    assert "https://cdp.example/u/abc?x=1&y=2" in pro.text  # the link, unescaped in text
    assert 'href="https://cdp.example/u/abc?x=1&amp;y=2"' in pro.html

    other = rendering.render(compiled, _recipient({}), SENDER)
    assert other.subject == "Hello, your cart is waiting"
    assert "Hi there, you left something behind" in other.html
    assert "shipping on this order is on us" not in other.html
    assert "Trail shoe" not in other.html


def test_markup_in_a_trait_arrives_escaped_and_a_script_link_goes_nowhere():
    compiled = compile_template(_content())
    email = rendering.render(
        compiled,
        _recipient({"first_name": '<img src=x onerror="alert(1)">'}, {"cart": CART}),
        SENDER,
    )
    assert "<img src=x" not in email.html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in email.html
    assert "&amp;lt;" not in email.html  # escaped once, not twice
    assert "javascript:" not in email.html
    assert 'href="#"' in email.html
    assert '<img src=x onerror="alert(1)">' in email.text  # plain text is not HTML


def test_segment_membership_selects_a_block():
    content = _content(
        mjml="<mjml><mj-body><mj-section><mj-column>"
        '{% if profile.segments contains "VIP" %}<mj-text>VIP perk</mj-text>{% endif %}'
        "<mj-text>{{ workspace.postal_address }}</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>"
    )
    compiled = compile_template(content)
    assert "VIP perk" in rendering.render(compiled, _recipient({}, segments=("VIP",)), SENDER).html
    assert "VIP perk" not in rendering.render(compiled, _recipient({}), SENDER).html


def test_a_thousand_recipients_cost_one_mjml_compile(monkeypatch):
    calls = []
    real = mjml.mjml2html

    def counting(source: str) -> str:
        calls.append(1)
        return real(source)

    monkeypatch.setattr(mjml, "mjml2html", counting)
    content = _content()
    key = ("test-version", id(content))
    names = set()
    for i in range(1000):
        compiled = rendering.cached(key, lambda: content)
        email = rendering.render(
            compiled, _recipient({"first_name": f"Name{i}"}, {"cart": CART[:1]}), SENDER
        )
        names.add(email.subject)
    assert len(names) == 1000
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("field", "changes", "line", "words"),
    [
        ("mjml", {"mjml": "<mjml><mj-body>\n<mj-section>\n{% if x %}\n</mj-section>\n</mj-body></mjml>"},
         3, "invalid Liquid"),
        ("mjml", {"mjml": "<mjml><mj-body>\n\n<mj-section><mj-column><mj-text>{{ x | nosuch }}"
                  "</mj-text></mj-column></mj-section></mj-body></mjml>"}, 3, "unknown Liquid filter"),
        ("mjml", {"mjml": "<mjml><mj-body>\n<mj-section>\n<mj-column>\n<mj-text>x</mj-text>\n"
                  "</mj-section>\n</mj-body></mjml>"}, 3, "<mj-column> is not closed"),
        ("mjml", {"mjml": "<mjml><mj-body><mj-section><mj-column>\n"
                  '<mj-image src="a.png" width="{{ w }}px" />\n</mj-column></mj-section></mj-body></mjml>'},
         2, "MJML drops"),
        ("subject", {"subject": "Hi {{ name "}, 1, "invalid Liquid"),
        ("mjml", {"mjml": "Hello"}, 1, "must be MJML"),
    ],
)  # fmt: skip
def test_an_invalid_template_is_refused_with_its_line(field, changes, line, words):
    with pytest.raises(TemplateError) as caught:
        compile_template(_content(**changes))
    assert caught.value.field == field
    assert caught.value.line == line, caught.value
    assert words in caught.value.message


def test_a_runaway_loop_stops_with_a_clear_error():
    content = _content(
        mjml="<mjml><mj-body><mj-section><mj-column><mj-text>"
        "{% for a in profile.computed.cart %}{% for b in profile.computed.cart %}"
        "{% for c in profile.computed.cart %}x{% endfor %}{% endfor %}{% endfor %}"
        "</mj-text></mj-column></mj-section></mj-body></mjml>"
    )
    compiled = compile_template(content)
    with pytest.raises(RenderError, match="loop iteration limit"):
        rendering.render(compiled, _recipient({}, {"cart": list(range(40))}), SENDER)


def test_a_loop_between_table_rows_still_gives_each_row_its_text():
    """In a table, the text layout separates a loop's tags from its rows: such a text part is
    made from each recipient's HTML instead of once."""
    content = _content(
        mjml="<mjml><mj-body><mj-section><mj-column><mj-table>"
        "<tr><th>Item</th></tr>{% for item in profile.computed.cart %}"
        "<tr><td>{{ item.name }}</td><td>{{ item.price }}</td></tr>{% endfor %}"
        "</mj-table></mj-column></mj-section></mj-body></mjml>"
    )
    compiled = compile_template(content)
    assert compiled.text_per_recipient
    email = rendering.render(compiled, _recipient({}, {"cart": CART}), SENDER)
    assert "Trail shoe" in email.text
    assert "Wool sock" in email.text
    assert "€9.00" in email.text
