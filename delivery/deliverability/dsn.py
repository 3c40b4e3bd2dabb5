"""RFC 3464 delivery status notifications: the recipients of message/delivery-status parts.

Rules:
- A recipient block is one with Final-Recipient, Original-Recipient, Action
  or Status; the recipient is the Final-Recipient's address, else the
  Original-Recipient's.
- The status is chosen as `status_codes.dsn_status` says, and its class makes
  the failure hard or soft whatever the Action says. Without a code, a basic
  reply code in the Diagnostic-Code decides, then the Action (failed or
  undeliverable: hard; anything else: soft).
- A 2.x.x status, or without a code an Action of delivered, relayed, expanded
  or deliverable (Postfix's address verification), is a success, not a failure.
- message/global-delivery-status (RFC 6533) is read the same way.
"""

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from delivery.deliverability import addresses, status_codes
from delivery.deliverability.failures import Failure, diagnostic, first_each
from delivery.deliverability.message_parts import MAX_TEXT, Headers, Part, headers_of, payload
from delivery.deliverability.status_codes import FailureClass

STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded", "deliverable"})
_FAILED_ACTIONS = frozenset({"failed", "undeliverable"})
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "action", "status")
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")


@dataclass(frozen=True, slots=True)
class Dsn:
    failures: tuple[Failure, ...]
    first_status: str | None
    recipient_blocks: int
    sender: str | None
    envelope_id: str | None
    defects: tuple[str, ...]


def read(found: list[Part]) -> Dsn | None:
    """The DSN among the message's parts, or None when it has no delivery-status part."""
    reports = [part.message for part in found if part.type in STATUS_TYPES]
    if not reports:
        return None
    blocks = [block for part in reports for block in _blocks(part)]
    failures: list[Failure] = []
    defects: list[str] = []
    first_status: str | None = None
    recipient_blocks = 0
    for block in blocks:
        if not any(name in block for name in _RECIPIENT_FIELDS):
            continue
        recipient_blocks += 1
        status = status_codes.dsn_status(block.get("status"), block.get("diagnostic-code"))
        if recipient_blocks == 1:
            first_status = status
        failure = _failure(block, status)
        if isinstance(failure, str):
            if failure:
                defects.append(failure)
            continue
        failures.append(failure)
    return Dsn(
        failures=first_each(failures),
        first_status=first_status,
        recipient_blocks=recipient_blocks,
        sender=_first(blocks, "x-postfix-sender"),
        envelope_id=_first(blocks, "original-envelope-id"),
        defects=tuple(defects),
    )


def _failure(block: Headers, status: str | None) -> Failure | str:
    """The block's failure, or why there is none ("" for a success)."""
    final = addresses.normalize(block.get("final-recipient") or "")
    original = addresses.normalize(block.get("original-recipient") or "")
    action = (block.get("action") or "").lower().split(" ", 1)[0].strip(";")
    found_class = _class(status, block.get("diagnostic-code"), action)
    if found_class is None:
        return ""
    recipient = final or original
    if recipient is None:
        return "delivery-status recipient without an address"
    return Failure(
        recipient=recipient,
        status=status,
        bounce_class=found_class,
        delayed=action == "delayed",
        diagnostic=diagnostic(block.get("diagnostic-code")),
        original_recipient=original,
    )


def _class(status: str | None, diagnostic_code: str | None, action: str) -> FailureClass | None:
    if status is not None:
        return status_codes.class_of(status)
    replied = status_codes.reply_class(diagnostic_code or "")
    if replied is not None:
        return replied
    if action in _SUCCESS_ACTIONS:
        return None
    # A hard bounce suppresses the address for good, so it needs a code or a plain "failed".
    return "hard" if action in _FAILED_ACTIONS else "soft"


def _blocks(part: Message) -> list[Headers]:
    """The field blocks of a delivery-status part."""
    items = payload(part)
    if isinstance(items, str):
        return _text_blocks(items)
    blocks: list[Headers] = []
    for item in items:
        blocks.append(headers_of(item))
        # message/global-delivery-status is parsed as one message: its body holds the rest.
        rest = payload(item)
        if isinstance(rest, str) and rest.strip():
            blocks.extend(_text_blocks(rest))
    return blocks


def _text_blocks(text: str) -> list[Headers]:
    parser = HeaderParser(policy=compat32)
    chunks = _BLANK_LINE.split(text[:MAX_TEXT])
    return [headers_of(parser.parsestr(chunk.strip("\r\n"))) for chunk in chunks if chunk.strip()]


def _first(blocks: list[Headers], name: str) -> str | None:
    for block in blocks:
        value = block.get(name)
        if value:
            return value
    return None
