"""Bounces written as free text: who failed, with what status, and whether hard or soft.

MTAs that send no DSN (qmail, Exim without DSN, old Gmail, Yahoo, Lotus
Notes, Exchange 2003, old sendmail) still write their reports in a few
shapes, which these patterns read.

Rules:
- A message is a text bounce when a mail system sent it (a mailer-daemon or
  postmaster sender, X-Failed-Recipients, or a bounce subject) and its report
  says that delivery failed or is delayed. One that names no recipient must
  come from a mailer-daemon or postmaster (a person may write "undeliverable").
- The report is the text before the copy of the returned message, at most
  `REPORT_CHARS` characters.
- Recipients are X-Failed-Recipients when given; else the addresses that
  begin a line of the report (qmail, Yahoo, Exim, Gmail, Lotus and Exchange
  list them so), those of sendmail transcript lines (`550 <address>...`) and
  labelled ones (`target mail address: ...`); else what flufl.bounce finds.
  The bounce's own addresses, mail-system mailboxes and the returned
  message's sender are never recipients.
- A recipient's explanation runs from its line to the next recipient's. Its
  class comes from an enhanced code there, else a reply code, else words for
  a reason (unknown user: hard; full mailbox: soft), else the notice being a
  delay, else words of the whole report. With none of these it is soft: a
  hard bounce suppresses the address for good, so it needs evidence.
"""

import re
from dataclasses import dataclass
from email.message import Message

from delivery.deliverability import addresses, bounce_fallback, originals, status_codes
from delivery.deliverability.failures import Failure, diagnostic, first_each
from delivery.deliverability.message_parts import (
    Headers,
    Part,
    body_text,
    decoded,
    headers_in_text,
)
from delivery.deliverability.originals import Original
from delivery.deliverability.status_codes import FailureClass

REPORT_CHARS = 16 * 1024
_ADDR = addresses.ADDRESS.pattern
_OWN_FIELDS = (
    "from", "sender", "reply-to", "to", "cc", "return-path",
    "delivered-to", "x-original-to", "envelope-to",
)  # fmt: skip

_SYSTEM_SENDER = re.compile(
    r"mailer-daemon|mail-daemon|postmaster|mail delivery (?:system|subsystem)"
    r"|mail administrator",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|failure notice|mail failure|delivery (?:status|failure|failed|has"
    r" failed|problem|notification|report)|mail delivery (?:failed|failure)|non-?delivery"
    r"|not (?:be )?delivered|bounce|warning: message .{0,80} delayed|delayed mail",
    re.IGNORECASE,
)
_FAILURE = re.compile(
    r"could ?n[o']t be delivered|was ?n[o']t able to deliver|unable to deliver"
    r"|delivery to the following recipients? (?:failed|has been delayed)|failed permanently"
    r"|permanent (?:fatal )?errors?|address(?:es|\(es\))? failed|not (?:yet )?been delivered"
    r"|did not reach the following recipient|undeliverable|delivery has failed"
    r"|(?:was|were|been) rejected|failure reasons|transcript of session follows"
    r"|could not deliver|delivery (?:is |was )?delayed",
    re.IGNORECASE,
)
_DELAY = re.compile(
    r"not yet been delivered|has been delayed|delivery (?:is |was )?delayed"
    r"|warning message only|delivery attempts will continue|will be retried"
    r"|will (?:continue to )?retry",
    re.IGNORECASE,
)
_DELAY_SUBJECT = re.compile(r"\bdelay(?:ed)?\b", re.IGNORECASE)
_HARD_REASON = re.compile(
    r"user unknown|unknown (?:user|recipient)|no such (?:user|mailbox|recipient|address|domain)"
    r"|(?:user|recipient|mailbox|account|address) (?:not found|unknown|does ?n[o']t exist"
    r"|is disabled|disabled|unavailable)|not listed in (?:the )?(?:public )?(?:name|domino)"
    r"|name is not recognized|host unknown|domain name not found|domain (?:not found"
    r"|does ?n[o']t exist)|invalid (?:recipient|mailbox|address)",
    re.IGNORECASE,
)
_SOFT_REASON = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:the |their |storage )?quota"
    r"|insufficient (?:storage|space|disk)|greylist|connection timed out",
    re.IGNORECASE,
)
_PERMANENT = re.compile(r"permanent(?:ly)?\b|fatal error", re.IGNORECASE)
_TEMPORARY = re.compile(r"temporar(?:y|ily)|try again later|\bdelayed\b", re.IGNORECASE)

# Where the copy of the returned message starts.
_MARKER = re.compile(
    r"^[ \t]*(?:[-=*_]{2,}[ \t]*)?(?:below this line is a copy of the message"
    r"|this is a copy of the message|a copy of the original message"
    r"|(?:original|returned|unsent|undelivered|bounced) (?:message|mail|e-?mail)"
    r"|headers? of the original message)\b[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
# A failed recipient that begins a line: `<a@b>:`, `  a@b`, `a@b on <date>`, `a@b (reason)`.
_LISTED = re.compile(rf"^[ \t]*<?({_ADDR})>?[ \t]*(?::|$|\(|on[ \t])", re.MULTILINE)
_TRANSCRIPT = re.compile(
    rf"^[ \t]*[45]\d\d[ -](?:[45]\.\d{{1,3}}\.\d{{1,3}}[ \t]+)?<?({_ADDR})>?\.\.\.", re.MULTILINE
)
_LABELLED = re.compile(
    r"^[ \t]*(?:(?:target|failed|intended|original|final|invalid|unknown)[ \t]+)?"
    r"(?:(?:e-?)?mail[ \t]+)?(?:recipient|address)(?:es)?(?:[ \t]+address)?[ \t]*:[ \t]*"
    rf"<?({_ADDR})>?",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class TextBounce:
    failures: tuple[Failure, ...]
    bounce_class: FailureClass
    status: str | None
    delayed: bool
    original: Original
    used_fallback: bool


def read(message: Message, headers: Headers, found: list[Part]) -> TextBounce | None:
    """The text bounce `message` is, or None when it is not one."""
    named = _header_recipients(headers)
    subject = decoded(headers.get("subject"))
    from_system = bool(_SYSTEM_SENDER.search(" ".join(headers.all("from"))))
    if not (named or from_system or _BOUNCE_SUBJECT.search(subject)):
        return None
    report, copy = _split(body_text(found))
    if not named and not _FAILURE.search(report):
        return None
    attached = originals.attached(found[1:])
    if attached is not None or not copy.strip():
        original = originals.of(attached)
    else:
        quoted, envelope_sender = headers_in_text(copy)
        original = originals.of(quoted, *([envelope_sender] if envelope_sender else []))
    excluded = set(addresses.all_in([v for name in _OWN_FIELDS for v in headers.all(name)]))
    excluded.update(original.senders)
    delayed = bool(_DELAY.search(report) or _DELAY_SUBJECT.search(subject))
    starts = _listed(report, excluded)
    recipients = named or list(dict.fromkeys(address for _, address in starts))
    used_fallback = False
    if not recipients:
        recipients = bounce_fallback.recipients(message, report, excluded)
        used_fallback = bool(recipients)
    failures = first_each(
        [_failure(a, _block(a, starts, report), report, delayed) for a in recipients]
    )
    if failures:
        first = failures[0]
        return TextBounce(
            failures, first.bounce_class, first.status, first.delayed, original, used_fallback
        )
    if not from_system:
        return None
    status = status_codes.first_failure_code(report)
    found_class = _class(report, report, delayed, status)
    soft_delay = delayed and found_class == "soft"
    return TextBounce((), found_class, status, soft_delay, original, used_fallback=False)


def _header_recipients(headers: Headers) -> list[str]:
    found: list[str] = []
    for value in headers.all("x-failed-recipients"):
        for item in value.split(","):
            address = addresses.normalize(item)
            if address is not None and address not in found:
                found.append(address)
    return found


def _split(text: str) -> tuple[str, str]:
    """The report and the quoted copy of the returned message ("" when there is none)."""
    text = text.replace("\r\n", "\n")
    marker = _MARKER.search(text, 0, REPORT_CHARS)
    if marker is None:
        return text[:REPORT_CHARS], ""
    return text[: marker.start()], text[marker.end() :]


def _listed(report: str, excluded: set[str]) -> list[tuple[int, str]]:
    """The line starts and addresses of the recipients the report lists, in order."""
    found: dict[int, str] = {}
    for pattern in (_LISTED, _TRANSCRIPT, _LABELLED):
        for match in pattern.finditer(report):
            address = match.group(1).strip(".").lower()
            if address not in excluded and not addresses.is_system(address):
                found.setdefault(match.start(), address)
    return sorted(found.items())


def _block(address: str, starts: list[tuple[int, str]], report: str) -> str:
    """The report's explanation for `address`: its line up to the next other recipient's line."""
    positions = [at for at, listed in starts if listed == address]
    start = positions[0] if positions else report.lower().find(address)
    if start < 0:
        return report
    after = [at for at, listed in starts if at > start and listed != address]
    return report[start : after[0] if after else len(report)]


def _failure(address: str, block: str, report: str, delayed: bool) -> Failure:
    status = status_codes.first_failure_code(block)
    found_class = _class(block, report, delayed, status)
    return Failure(
        recipient=address,
        status=status,
        bounce_class=found_class,
        delayed=delayed and found_class == "soft",
        diagnostic=diagnostic(block),
    )


def _class(block: str, report: str, delayed: bool, status: str | None) -> FailureClass:
    by_code = status_codes.class_of(status) if status else status_codes.reply_class(block)
    if by_code is not None:
        return by_code
    by_reason = _reason(block)
    if by_reason is not None:
        return by_reason
    if delayed:
        return "soft"
    return _reason(report) or "soft"


def _reason(text: str) -> FailureClass | None:
    if _HARD_REASON.search(text):
        return "hard"
    if _SOFT_REASON.search(text):
        return "soft"
    if _PERMANENT.search(text):
        return "hard"
    if _TEMPORARY.search(text):
        return "soft"
    return None
