"""A template version compiled once: MJML to HTML a single time, Liquid left in place.

MRML (mjml-python) passes Liquid markup through untouched, in text and in
attribute values, and between sections, so the MJML is compiled once per
version and each recipient costs only Liquid renders of the HTML and the
text part (`render.py`). The compiler checks that claim on every template:
each Liquid tag of the source must come out of MJML in the same order, or
the template is refused with the line of the tag that MJML moved or
dropped (in a numeric attribute such as `width`, say).
"""

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import mjml
from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from liquid import BoundTemplate
from liquid.exceptions import LiquidError

from delivery.templates.language import SAFE_URL_FILTER, environment
from delivery.templates.model import TemplateContent, TemplateError
from delivery.templates.translate import Rendered, translate

_MARKUP = re.compile(r"\{\{-?.*?-?\}\}|\{%-?.*?-?%\}", re.DOTALL)
_TAG_NAME = re.compile(r"\{%-?\s*(\w+)")
_BLOCKS = {"if", "unless", "for", "case", "capture", "comment", "raw", "tablerow"}
_MJ_TAG = re.compile(r"<(/?)(mjml|mj-[\w-]+)\b[^>]*?(/?)>", re.DOTALL)
# A value that starts a link or an image source: it goes through `safe_url`.
_URL_START = re.compile(r"""(\b(?:href|src)\s*=\s*["'])\s*\{\{(-?)(.*?)(-?)\}\}""", re.DOTALL)
# Three or more line breaks, written to start with a literal: a literal start is searched for
# as a string, which `\n{3,}` is not (bench/README.md, "Sending").
BLANK_LINES = re.compile(r"\n\n\n+")
_EMPTY_LINK = re.compile(r"\[\s*\]\([^)]*\)")
_TEXT_CONFIG = ParserConfig(display_links=True)


@dataclass(frozen=True)
class Part:
    """One part's Liquid, parsed, and translated to Python when it can be (`translate.py`)."""

    template: BoundTemplate
    fast: Rendered | None

    @classmethod
    def of(cls, template: BoundTemplate, *, html: bool) -> "Part":
        return cls(template, translate(template, html=html))


@dataclass(frozen=True)
class CompiledTemplate:
    """One version, ready to render for any number of recipients."""

    subject: Part
    preheader: Part | None
    html: Part
    text: Part
    html_source: str  # the HTML with its Liquid, as rendered per recipient
    text_generated: bool = False  # from the HTML: its blank runs are folded after rendering
    # The text cannot be made once with the Liquid in place (see compile_template):
    # it is made from each recipient's HTML instead, at a cost of milliseconds.
    text_per_recipient: bool = False

    @cached_property
    def names(self) -> frozenset[str]:
        """The variables its parts read (`profile`, `recommendations`, ...)."""
        parts = (self.subject, self.preheader, self.html, self.text)
        return frozenset(n for p in parts if p is not None for n in names_used(p.template))


def line_of(source: str, index: int) -> int:
    return source.count("\n", 0, max(index, 0)) + 1


def _unclosed_block(source: str) -> int | None:
    """The line of the innermost Liquid block left open, if any."""
    stack: list[tuple[str, int]] = []
    for match in _MARKUP.finditer(source):
        found = _TAG_NAME.match(match.group(0))
        if found is None:
            continue
        name = found.group(1)
        if name in _BLOCKS:
            stack.append((name, match.start()))
        elif name.startswith("end") and stack and stack[-1][0] == name[3:]:
            stack.pop()
    return line_of(source, stack[-1][1]) if stack else None


def _syntax_line(source: str, error: LiquidError) -> int | None:
    token = getattr(error, "token", None)
    start = getattr(token, "start_index", -1)
    if isinstance(start, int) and start >= 0:
        return line_of(source, start)
    found = _unclosed_block(source)
    if found is not None:
        return found
    # The error is inside one tag: find the tag that fails alone.
    env = environment(html=False)
    for match in _MARKUP.finditer(source):
        markup = match.group(0)
        if markup.startswith("{{"):
            try:
                env.from_string(markup)
            except LiquidError:
                return line_of(source, match.start())
    return None


def parse_liquid(source: str, *, field: str, html: bool) -> BoundTemplate:
    """The Liquid of one part, parsed; refused with its line when invalid."""
    env = environment(html=html)
    try:
        template = env.from_string(source)
    except LiquidError as error:
        message = getattr(error, "message", None) or str(error)
        raise TemplateError(
            f"invalid Liquid: {message}", field=field, line=_syntax_line(source, error)
        ) from None
    unknown = sorted(set(template.analyze().filters) - set(env.filters))
    if unknown:
        spans = template.analyze().filters[unknown[0]]
        index = spans[0].index if spans else -1
        raise TemplateError(
            f"unknown Liquid filter '{unknown[0]}'", field=field, line=line_of(source, index)
        )
    return template


def _mjml_structure(source: str) -> tuple[int, str] | None:
    """Where MJML's structure breaks, and how: a tag left open, or a closing tag with no opening."""
    stack: list[tuple[str, int]] = []
    for match in _MJ_TAG.finditer(source):
        closing, name, self_closing = match.groups()
        if self_closing:
            continue
        if not closing:
            stack.append((name, match.start()))
        elif stack and stack[-1][0] == name:
            stack.pop()
        elif any(open_name == name for open_name, _ in stack):
            left, at = stack[-1]
            return line_of(source, at), f"<{left}> is not closed before </{name}>"
        else:
            return line_of(source, match.start()), f"</{name}> closes nothing"
    if stack:
        left, at = stack[-1]
        return line_of(source, at), f"<{left}> is not closed"
    return None


def compile_mjml(source: str) -> str:
    if "<mjml" not in source:
        raise TemplateError(
            "the template must be MJML: it starts with <mjml>", field="mjml", line=1
        )
    try:
        html: str = mjml.mjml2html(source)
    except ValueError as error:
        found = _mjml_structure(source)
        if found is None:
            raise TemplateError(f"invalid MJML: {error}", field="mjml") from None
        line, problem = found
        raise TemplateError(f"invalid MJML: {problem}", field="mjml", line=line) from None
    return html


def _check_liquid_survived(source: str, html: str) -> None:
    """Every Liquid tag of the source comes out of MJML, the block tags in the same order."""
    position = 0
    for match in _MARKUP.finditer(source):
        markup = match.group(0)
        if markup.startswith("{{"):
            if markup not in html:
                raise TemplateError(
                    f"MJML drops {markup} here (a value inside a numeric attribute, such as "
                    "width, is lost); put it in text or in a link",
                    field="mjml", line=line_of(source, match.start()),
                )  # fmt: skip
            continue
        found = html.find(markup, position)
        if found < 0:
            raise TemplateError(
                f"MJML moves or drops {markup} here; put Liquid tags around whole sections, "
                "columns or elements, or inside text",
                field="mjml", line=line_of(source, match.start()),
            )  # fmt: skip
        position = found + len(markup)


def _with_safe_urls(html: str) -> str:
    """Each value that starts a link or an image source, passed through `safe_url`."""

    def guard(match: re.Match[str]) -> str:
        start, left, expression, right = match.groups()
        return f"{start}{{{{{left}{expression.rstrip()} | {SAFE_URL_FILTER} {right}}}}}"

    return _URL_START.sub(guard, html)


# The subject and preheader go into the HTML (its title, and the hidden preview
# text) as placeholders, replaced after MJML by outputs of the rendered values:
# MRML copies the title into an attribute with backslash-escaped quotes, which
# would break the Liquid of a subject such as `default: "Hello"`.
SUBJECT_VARIABLE = "cdp_subject"
PREHEADER_VARIABLE = "cdp_preheader"
_SUBJECT_MARK = "cdp-subject-d41d8cd9"
_PREHEADER_MARK = "cdp-preheader-8f00b204"
_TITLE = re.compile(r"<mj-title\b[^>]*>.*?</mj-title>", re.DOTALL)
_PREVIEW = re.compile(r"<mj-preview\b[^>]*>.*?</mj-preview>", re.DOTALL)


def _with_head(content: TemplateContent) -> str:
    """The MJML with the subject as its title and the preheader as its preview text."""
    source = _TITLE.sub("", content.mjml)
    extra = f"<mj-title>{_SUBJECT_MARK}</mj-title>"
    if content.preheader:
        source = _PREVIEW.sub("", source)
        extra += f"<mj-preview>{_PREHEADER_MARK}</mj-preview>"
    if re.search(r"<mj-head\b[^>]*>", source):
        return re.sub(r"(<mj-head\b[^>]*>)", lambda m: m.group(1) + extra, source, count=1)
    opening = re.search(r"<mjml\b[^>]*>", source)
    if opening is None:
        return source
    return source[: opening.end()] + f"<mj-head>{extra}</mj-head>" + source[opening.end() :]


def _with_head_values(html: str) -> str:
    return html.replace(_SUBJECT_MARK, "{{ %s }}" % SUBJECT_VARIABLE).replace(  # noqa: UP031
        _PREHEADER_MARK,
        "{{ %s }}" % PREHEADER_VARIABLE,  # noqa: UP031
    )


def text_from_html(html: str) -> str:
    """The plain-text part: the HTML's text, links shown after their words, blank runs folded.

    A link around an image only (a product photo) has no words: it is left
    out, as the product's name beside it carries the text.
    """
    text = _EMPTY_LINK.sub("", get_text(html, _TEXT_CONFIG))
    text = "\n".join(line.strip() for line in text.splitlines())
    return BLANK_LINES.sub("\n\n", text).strip() + "\n"


def compile_template(content: TemplateContent) -> CompiledTemplate:
    """Check and compile a version; raises TemplateError naming the part and the line."""
    subject = parse_liquid(content.subject, field="subject", html=False)
    preheader = (
        parse_liquid(content.preheader, field="preheader", html=False)
        if content.preheader
        else None
    )
    parse_liquid(content.mjml, field="mjml", html=True)
    text = parse_liquid(content.text, field="text", html=False) if content.text else None
    compiled = compile_mjml(_with_head(content))
    _check_liquid_survived(content.mjml, compiled)
    html_source = _with_head_values(_with_safe_urls(compiled))
    html = parse_liquid(html_source, field="mjml", html=True)
    generated = text is None
    per_recipient = False
    if text is None:
        text_source = text_from_html(html_source)
        # The text follows the HTML's Liquid only if it keeps its order; inside a table
        # (a loop between rows) the layout can move a row away from its loop's tags.
        per_recipient = not _in_order(_markup(text_source), _markup(html_source))
        text = parse_liquid(text_source, field="text", html=False)
    return CompiledTemplate(
        subject=Part.of(subject, html=False),
        preheader=None if preheader is None else Part.of(preheader, html=False),
        html=Part.of(html, html=True),
        text=Part.of(text, html=False),
        html_source=html_source,
        text_generated=generated,
        text_per_recipient=per_recipient,
    )


def _markup(source: str) -> list[str]:
    return [m.group(0) for m in _MARKUP.finditer(source)]


def _in_order(part: list[str], whole: list[str]) -> bool:
    """Whether `part` is `whole` with some items left out, the rest in the same order."""
    remaining = iter(whole)
    return all(any(item == other for other in remaining) for item in part)


def names_used(template: BoundTemplate) -> dict[str, list[tuple[list[Any], int]]]:
    """Each global variable's paths and where they start (an index into the source)."""
    found: dict[str, list[tuple[list[Any], int]]] = {}
    for name, variables in template.analyze().globals.items():
        found[name] = [(list(v.segments), v.span.index) for v in variables]
    return found
