"""The translated templates render exactly what python-liquid renders, for the subset they cover."""

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from delivery.templates.language import environment
from delivery.templates.translate import FallbackError, LimitError, translate

NAMES = ["a", "b", "items", "profile", "missing"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(-2, 2, allow_nan=False),
    st.sampled_from(["", "x", "<b>&'\"", "Berlin", "https://a.example/?q=1&r=2", "javascript:x",
                     "2026-03-04T05:06:07Z"]),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["x", "y", "name"]), inner)
    ),
    max_leaves=8,
)
DATA = st.fixed_dictionaries({}, optional=dict.fromkeys(NAMES[:-1], VALUES))


def _path() -> st.SearchStrategy[str]:
    keys = st.sampled_from(["x", "y", "name", "size", "first", "last", "0", "1"])
    return st.builds(
        lambda root, rest: ".".join([root, *rest]).replace(".0", "[0]").replace(".1", "[1]"),
        st.sampled_from(NAMES), st.lists(keys, max_size=2),
    )  # fmt: skip


LITERALS = st.sampled_from(['"x"', "1", "0", "2.5", "true", "false", "nil", '"Berlin"', "''"])
OPERAND = st.one_of(_path(), LITERALS)
FILTERS = st.sampled_from(
    ["", ' | default: "d"', " | upcase", " | size", " | safe_url", " | escape", " | strip",
     ' | append: "!"', ' | join: ","', " | first", " | plus: 1", " | downcase | capitalize",
     ' | date: "%Y-%m-%d"', " | round: 1", " | truncate: 3"]
)  # fmt: skip


@st.composite
def conditions(draw: st.DrawFn) -> str:
    op = draw(st.sampled_from(["", "==", "!=", "<", ">", "<=", ">=", "contains"]))
    left = draw(OPERAND)
    single = left if not op else f"{left} {op} {draw(OPERAND)}"
    if draw(st.booleans()):
        return f"{single} {draw(st.sampled_from(['and', 'or']))} {draw(OPERAND)}"
    return single


@st.composite
def templates(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["text", "output", "if", "unless", "for", "comment"]))
        if kind == "text" or (depth >= 2 and kind in ("if", "unless", "for")):
            parts.append(draw(st.sampled_from(["a", " <p>", "&amp;", "\n", "é"])))
        elif kind == "output":
            parts.append("{{ " + draw(OPERAND) + draw(FILTERS) + " }}")
        elif kind == "comment":
            parts.append("{% comment %}hidden {{ a }}{% endcomment %}")
        elif kind in ("if", "unless"):
            body = draw(templates(depth + 1))
            tail = ""
            if kind == "if" and draw(st.booleans()):
                tail += "{% elsif " + draw(conditions()) + " %}" + draw(templates(depth + 1))
            if draw(st.booleans()):
                tail += "{% else %}" + draw(templates(depth + 1))
            parts.append(f"{{% {kind} {draw(conditions())} %}}{body}{tail}{{% end{kind} %}}")
        else:
            name = draw(st.sampled_from(["item", "a"]))
            options = draw(st.sampled_from(["", " limit: 2", " offset: 1", " reversed",
                                            " limit: 1 offset: 1 reversed", " limit: 0"]))  # fmt: skip
            body = draw(st.sampled_from([
                "{{ item }}", "{{ forloop.index }}:{{ item.name }}", "{{ a }}-{{ forloop.last }}",
                "{% if forloop.first %}F{% endif %}{{ forloop.rindex }}",
            ]))  # fmt: skip
            other = "{% else %}E" if draw(st.booleans()) else ""
            iterable = draw(st.sampled_from(["items", "a", "b.x", "missing"]))
            parts.append(f"{{% for {name} in {iterable}{options} %}}{body}{other}{{% endfor %}}")
    return "".join(parts)


def _both(source: str, data: dict[str, Any], *, html: bool) -> tuple[str | None, str | None]:
    """What python-liquid renders (or None if it raises) and what the translation renders
    (None if it hands the render back to python-liquid)."""
    template = environment(html=html).from_string(source)
    fast = translate(template, html=html)
    assert fast is not None, source
    try:
        expected: str | None = template.render(**data)
    except Exception:  # noqa: BLE001 - python-liquid's own error: the translation must not answer
        expected = None
    try:
        got: str | None = fast(data)
    except FallbackError:
        got = None
    return expected, got


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=templates(), data=DATA, html=st.booleans())
def test_a_translated_template_renders_what_python_liquid_renders(source, data, html):
    expected, got = _both(source, data, html=html)
    event("handed back to python-liquid" if got is None else "rendered by the translation")
    if got is not None:  # a render handed back is rendered by python-liquid itself
        assert got == expected, source


def test_most_renders_stay_on_the_translation():
    """Handing back is for odd values, not the common case: templates and data of the usual
    kind never leave the translation."""
    data = {"profile": {"traits": {"name": "Ann <b>", "plan": "pro"}}, "items": [{"name": "x"}] * 3}
    source = (
        '{{ profile.traits.name | default: "there" }}{% if profile.traits.plan == "pro" %}P'
        "{% endif %}{% for item in items limit: 2 %}{{ forloop.index }}{{ item.name }}{% endfor %}"
    )
    expected, got = _both(source, data, html=True)
    assert got is not None
    assert got == expected == "Ann &lt;b&gt;P1x2x"


@pytest.mark.parametrize(
    "source",
    ["{% assign x = 1 %}{{ x }}", "{% capture c %}x{% endcapture %}", "{% case a %}{% endcase %}",
     "{{ a | default: b, allow_false: true }}", "{% for i in (1..3) %}{{ i }}{% endfor %}",
     "{% for i in items %}{{ forloop.parentloop }}{% endfor %}"],
)  # fmt: skip
def test_what_the_translation_does_not_cover_is_left_to_python_liquid(source):
    assert translate(environment(html=True).from_string(source), html=True) is None


def test_a_loop_that_runs_too_long_stops():
    template = environment(html=False).from_string(
        "{% for a in items %}{% for b in items %}{% for c in items %}x{% endfor %}{% endfor %}"
        "{% endfor %}"
    )
    fast = translate(template, html=False)
    assert fast is not None
    with pytest.raises(LimitError):
        fast({"items": list(range(30))})


def test_an_output_that_grows_too_large_stops():
    template = environment(html=False).from_string("{% for a in items %}{{ big }}{% endfor %}")
    fast = translate(template, html=False)
    assert fast is not None
    with pytest.raises(LimitError):
        fast({"items": list(range(20)), "big": "x" * 100_000})
