"""Rewrite rendered email HTML so that clicks and opens are tracked.

A template author keeps a link untracked with `rel="notrack"` on `<mj-button>`,
`<mj-image>`, `<mj-navbar-link>`, `<mj-social-element>` or a raw `<a>`, or with
`data-cdp-notrack` on a raw `<a>` in `<mj-text>` or `<mj-raw>` (MJML drops data
attributes from its own components).

Tags are found with regular expressions, not an HTML parser, because this runs
for every message sent. Links inside comments are rewritten too, so that the
markup in Outlook's conditional comments is tracked.
"""

import html as markup
import re
from collections.abc import Collection
from datetime import datetime
from typing import Final
from uuid import UUID

from delivery.tracking.tokens import MAX_LINK, Tokens, is_trackable

_SPACE: Final = " \t\n\r\f"  # HTML whitespace; `\s` would also take Unicode spaces
_VALUE: Final = r"""(?:"[^"]*+"|'[^']*+'|[^ \t\n\r\f>]*+)"""
_NAME: Final = r"[^ \t\n\r\f/>][^ \t\n\r\f/>=]*+"
_EQUALS: Final = r"[ \t\n\r\f]*+=[ \t\n\r\f]*+"
# Possessive quantifiers keep matching linear on unterminated tags.
_A_TAG: Final = re.compile(
    rf"<a(?=[ \t\n\r\f/>])((?:[ \t\n\r\f/]++|{_NAME}(?:{_EQUALS}{_VALUE})?+)*+)>",
    re.IGNORECASE,
)
_ATTRIBUTE: Final = re.compile(rf"({_NAME})(?:{_EQUALS}({_VALUE}))?+")
_BODY_END: Final = re.compile(r"</body(?![^ \t\n\r\f/>])", re.IGNORECASE)
_NOTRACK: Final = "data-cdp-notrack"
_PIXEL: Final = (
    '<img src="{}" width="1" height="1" alt="" '
    'style="display:block;height:1px;width:1px;border:0;margin:0;padding:0" />'
)


def track_html(
    html: str,
    *,
    tokens: Tokens,
    base_url: str,
    workspace_id: UUID,
    delivery_id: UUID,
    at: datetime,
    clicks: bool,
    opens: bool,
    keep: Collection[str],
) -> str:
    if at.tzinfo is None:
        raise ValueError("tracking times must be timezone-aware")
    base = base_url.rstrip("/")
    links = _Links(
        tokens=tokens,
        prefix=markup.escape(f"{base}/t/c/"),
        workspace_id=workspace_id,
        delivery_id=delivery_id,
        at=at,
        keep=frozenset(keep),
        clicks=clicks,
    )
    # Runs without click tracking too: `data-cdp-notrack` never reaches a recipient.
    html = _A_TAG.sub(links, html)
    if opens:
        token = tokens.open(workspace_id, delivery_id, at)
        html = _with_pixel(html, _PIXEL.format(markup.escape(f"{base}/t/o/{token}")))
    return html


class _Links:
    """Rewrites one `<a>` tag at a time, numbering the tracked links in order."""

    def __init__(
        self,
        *,
        tokens: Tokens,
        prefix: str,
        workspace_id: UUID,
        delivery_id: UUID,
        at: datetime,
        keep: frozenset[str],
        clicks: bool,
    ) -> None:
        self._tokens = tokens
        self._prefix = prefix
        self._workspace_id = workspace_id
        self._delivery_id = delivery_id
        self._at = at
        self._keep = keep
        self._clicks = clicks
        self._count = 0

    def __call__(self, tag: re.Match[str]) -> str:
        attributes = tag.group(1)
        href: re.Match[str] | None = None
        rel_notrack = False
        opted_out: list[re.Match[str]] = []
        for attribute in _ATTRIBUTE.finditer(attributes):
            name = attribute.group(1).lower()
            if name == "href" and href is None:
                href = attribute
            elif name == "rel":
                # Any rel counts, not only the first as browsers read it: the author's intent wins.
                rel_notrack = rel_notrack or _has_notrack(attribute.group(2))
            elif name == _NOTRACK:
                opted_out.append(attribute)
        opening = tag.group(0)[:2]  # keeps `<A` as written
        if opted_out:
            return f"{opening}{_without(attributes, opted_out)}>"
        if href is None or not self._clicks or rel_notrack:
            return tag.group(0)
        target = self._target(href.group(2))
        if target is None:
            return tag.group(0)
        return f"{opening}{attributes[: href.start(2)]}{target}{attributes[href.end(2) :]}>"

    def _target(self, value: str | None) -> str | None:
        """The tracked href, quoted as the original was, or None to leave the link alone."""
        if not value or self._count > MAX_LINK:
            return None
        quote = value[0] if _is_quoted(value) else ""
        url = _unquote(value).strip(_SPACE)
        if url in self._keep or not is_trackable(url):
            return None
        token = self._tokens.click(
            self._workspace_id, self._delivery_id, self._count, url, self._at
        )
        self._count += 1
        return f"{quote}{self._prefix}{token}{quote}"


def _is_quoted(value: str) -> bool:
    return len(value) > 1 and value[0] == value[-1] and value[0] in "\"'"


def _unquote(value: str) -> str:
    if _is_quoted(value):
        value = value[1:-1]
    if "&" not in value:
        return value
    if "&" not in value.replace("&amp;", ""):
        return value.replace("&amp;", "&")  # the usual case, without the cost of unescape
    return markup.unescape(value)


def _has_notrack(rel: str | None) -> bool:
    return rel is not None and "notrack" in _unquote(rel).lower().split()


def _without(attributes: str, removed: list[re.Match[str]]) -> str:
    """The attributes minus the removed ones and the whitespace before each."""
    parts = []
    cursor = 0
    for attribute in removed:
        start = attribute.start()
        while start > cursor and attributes[start - 1] in _SPACE:
            start -= 1
        parts.append(attributes[cursor:start])
        cursor = attribute.end()
    parts.append(attributes[cursor:])
    return "".join(parts)


def _with_pixel(html: str, pixel: str) -> str:
    end = _last_body_end(html)
    return html + pixel if end < 0 else f"{html[:end]}{pixel}{html[end:]}"


def _last_body_end(html: str) -> int:
    # Start the scan at the last plainly cased `</body` to avoid a case-insensitive pass
    # over the whole message; fall back to one when that guess is not an end tag.
    hint = max(html.rfind("</body"), html.rfind("</BODY"), 0)
    found = _last_match(html, hint)
    return found if found >= 0 or hint == 0 else _last_match(html, 0)


def _last_match(html: str, start: int) -> int:
    found = -1
    for match in _BODY_END.finditer(html, start):
        found = match.start()
    return found
