"""Warnings on a saved version: what would hurt delivery or read badly, without refusing it."""

import re
from collections.abc import Iterator
from typing import Any

from delivery.templates.compiler import CompiledTemplate, line_of, names_used, parse_liquid
from delivery.templates.model import (
    COMPUTED_NAMES,
    GMAIL_CLIP_BYTES,
    SCOPE,
    SUBJECT_MAX,
    TemplateContent,
    TemplateWarning,
)

_IMAGE = re.compile(r"<(mj-image|img)\b([^>]*)>", re.IGNORECASE)
_ALT = re.compile(r"""\balt\s*=\s*("[^"]*\S[^"]*"|'[^']*\S[^']*')""", re.IGNORECASE)
# Locals a template may make itself, which are not globals to check.
_LOOP_NAMES = frozenset({"forloop"})


def _unknown_variables(content: TemplateContent) -> Iterator[TemplateWarning]:
    parts = [("subject", content.subject), ("preheader", content.preheader or "")]
    parts += [("mjml", content.mjml), ("text", content.text or "")]
    seen: set[str] = set()
    for field, source in parts:
        if not source:
            continue
        template = parse_liquid(source, field=field, html=field == "mjml")
        for name, uses in names_used(template).items():
            for path, index in uses:
                problem = _outside_scope(name, path)
                shown = ".".join(str(p) for p in path)
                if problem and shown not in seen:
                    seen.add(shown)
                    yield TemplateWarning(
                        "UNKNOWN_VARIABLE",
                        f"{field}: {{{{ {shown} }}}} {problem}; it renders empty",
                        line_of(source, index) if field == "mjml" else None,
                    )


def _outside_scope(name: str, path: list[Any]) -> str | None:
    if name in _LOOP_NAMES:
        return None
    if name not in SCOPE:
        known = ", ".join(sorted(SCOPE))
        return f"is not something templates can use (they can use {known})"
    members = SCOPE[name]
    member, trait = [*path[1:3], None, None][:2]
    if members is None or member is None:
        return None
    if member not in members:
        return f"is not part of {name} ({', '.join(sorted(members))})"
    computed = (name, member) == ("profile", "computed")
    if computed and trait is not None and trait not in COMPUTED_NAMES:
        return f"is not a computed trait ({', '.join(sorted(COMPUTED_NAMES))})"
    return None


def _uses(content: TemplateContent, *path: str) -> bool:
    sources = [content.mjml, content.text or ""]
    for source in sources:
        if not source:
            continue
        for name, uses in names_used(parse_liquid(source, field="mjml", html=False)).items():
            if any(list(used[: len(path)]) == list(path) for used, _ in uses if name == path[0]):
                return True
    return False


def _images_without_alt(content: TemplateContent) -> Iterator[TemplateWarning]:
    for match in _IMAGE.finditer(content.mjml):
        if not _ALT.search(match.group(2)):
            yield TemplateWarning(
                "IMAGE_WITHOUT_ALT",
                f"<{match.group(1)}> has no alt text: screen readers and mail clients that "
                "block images show nothing in its place",
                line_of(content.mjml, match.start()),
            )


def lint(content: TemplateContent, compiled: CompiledTemplate) -> list[TemplateWarning]:
    """The warnings of a version that compiles (`compiler.compile_template`)."""
    found: list[TemplateWarning] = []
    if not _uses(content, "unsubscribe_url"):
        found.append(
            TemplateWarning(
                "MISSING_UNSUBSCRIBE",
                "there is no {{ unsubscribe_url }} link: marketing email must let people "
                "unsubscribe in one click, and Gmail and Yahoo reject bulk mail without it",
            )
        )
    if not _uses(content, "workspace", "postal_address"):
        found.append(
            TemplateWarning(
                "MISSING_POSTAL_ADDRESS",
                "there is no {{ workspace.postal_address }}: CAN-SPAM asks commercial email to "
                "carry the sender's postal address",
            )
        )
    subject = " ".join(content.subject.split())
    if len(subject) > SUBJECT_MAX:
        found.append(
            TemplateWarning(
                "SUBJECT_TOO_LONG",
                f"the subject is {len(subject)} characters; most inboxes cut it off after "
                f"about {SUBJECT_MAX}",
            )
        )
    found.extend(_images_without_alt(content))
    found.extend(_unknown_variables(content))
    size = len(compiled.html_source.encode())
    if size > GMAIL_CLIP_BYTES:
        found.append(
            TemplateWarning(
                "HTML_TOO_LARGE",
                f"the HTML is {size // 1024} KB before personalization; Gmail clips messages "
                f"over {GMAIL_CLIP_BYTES // 1024} KB and hides the rest, the unsubscribe link "
                "included",
            )
        )
    return found
