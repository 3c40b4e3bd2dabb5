"""The Liquid dialect of templates: limits, escaping, and the filter we add.

Two environments share the limits and filters: one escapes every value for
HTML (the HTML part), one does not (subject, preheader, text part). Limits
keep an author's loop or a huge trait from holding a worker: a render that
passes them stops with `RenderError`.
"""

import re
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from liquid import Environment

LOOP_ITERATIONS = 10_000
OUTPUT_LIMIT = 1_000_000  # characters
# Where a link may lead when a value decides it; anything else becomes "#".
SAFE_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
SAFE_URL_FILTER = "safe_url"
_IGNORED = re.compile(r"[\x00-\x20]+")


class _Environment(Environment):
    loop_iteration_limit = LOOP_ITERATIONS
    output_stream_limit = OUTPUT_LIMIT
    local_namespace_limit = OUTPUT_LIMIT
    context_depth_limit = 30


def safe_url(value: Any) -> str:
    """The value as a link target, or "#" when it would run code or lead nowhere sensible.

    Applied by the compiler to every value that starts a link or an image
    source, so a trait cannot turn a link into `javascript:`.
    """
    if type(value) is str and value.startswith(("https://", "http://")):
        return value.strip()
    text = "" if value is None else str(value).strip()
    # Browsers ignore control characters and spaces inside a scheme.
    cleaned = _IGNORED.sub("", text)
    try:
        scheme = urlsplit(cleaned).scheme.lower()
    except ValueError:
        return "#"
    return text if not scheme or scheme in SAFE_SCHEMES else "#"


@cache
def environment(*, html: bool) -> Environment:
    """The environment for HTML (values escaped) or for plain text."""
    env = _Environment(autoescape=html)
    env.filters[SAFE_URL_FILTER] = safe_url
    return env
