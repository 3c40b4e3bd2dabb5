"""One recipient's message from a compiled version: Liquid renders only, no I/O.

The send workers call `render` in batches; `cached` keeps each version's
compilation for the life of the process, so MJML runs once per version.
"""

from collections.abc import Callable
from typing import Any

from liquid.exceptions import LiquidError, ResourceLimitError

from delivery.templates.compiler import (
    BLANK_LINES,
    PREHEADER_VARIABLE,
    SUBJECT_VARIABLE,
    CompiledTemplate,
    Part,
    compile_template,
    text_from_html,
)
from delivery.templates.model import Recipient, RenderedEmail, RenderError, Sender, TemplateContent
from delivery.templates.translate import FallbackError, LimitError

_CACHE_SIZE = 256
_cache: dict[Any, CompiledTemplate] = {}


def cached(key: Any, content: Callable[[], TemplateContent]) -> CompiledTemplate:
    """The compiled version under `key` (a version id), compiling it on first use."""
    found = _cache.get(key)
    if found is None:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        found = _cache[key] = compile_template(content())
    return found


def scope(recipient: Recipient, sender: Sender) -> dict[str, Any]:
    """The variables a template sees (API.md, "Templates")."""
    return {
        "profile": dict(recipient.profile),
        "event": recipient.event or {},
        "unsubscribe_url": recipient.unsubscribe_url,
        "preferences_url": recipient.preferences_url,
        "workspace": {"name": sender.name, "postal_address": sender.postal_address or ""},
        "recommendations": recipient.recommendations,
    }


def _render(part: Part, data: dict[str, Any], name: str) -> str:
    if part.fast is not None:
        try:
            return part.fast(data)
        except LimitError as error:
            raise RenderError(f"{name}: {error}") from None
        except (FallbackError, LiquidError):
            pass  # python-liquid renders this one, and says what is wrong if anything is
    try:
        return part.template.render(**data)
    except ResourceLimitError as error:
        raise RenderError(f"{name}: {error.message}") from None
    except LiquidError as error:
        raise RenderError(f"{name}: {getattr(error, 'message', None) or error}") from None


def _one_line(value: str) -> str:
    # A header is one line: a value cannot add headers to the message.
    return " ".join(value.split())


def render(compiled: CompiledTemplate, recipient: Recipient, sender: Sender) -> RenderedEmail:
    """The subject, preheader, HTML and text of the message for this recipient."""
    data = scope(recipient, sender)
    subject = _one_line(_render(compiled.subject, data, "subject"))
    preheader = (
        _one_line(_render(compiled.preheader, data, "preheader"))
        if compiled.preheader is not None
        else None
    )
    page = {**data, SUBJECT_VARIABLE: subject, PREHEADER_VARIABLE: preheader or ""}
    html = _render(compiled.html, page, "html")
    return RenderedEmail(subject, preheader, html, _text(compiled, data, html))


def _text(compiled: CompiledTemplate, data: dict[str, Any], html: str) -> str:
    if compiled.text_per_recipient:
        return text_from_html(html)
    text = _render(compiled.text, data, "text")
    if compiled.text_generated:
        # Lines that held only Liquid tags are empty once rendered.
        text = BLANK_LINES.sub("\n\n", text)
    return text
