"""Feedback reports: RFC 5965 (ARF) and Microsoft's JMRP, which only attaches the message.

Rules:
- Feedback-Type abuse and fraud are complaints. RFC 5965 registers abuse for
  unsolicited mail and fraud for fraud or phishing: either way the recipient,
  or their mailbox provider on their behalf, reports the mail as unwanted, and
  providers count both against the sender. virus and other say nothing of the
  recipient's wishes, not-spam (RFC 6430) says the opposite, and auth-failure
  (RFC 6591) reports a message's failed authentication; none of them is a
  complaint, and such reports name no recipients.
- A feedback report without a Feedback-Type, which RFC 5965 requires, is
  taken as abuse: feedback loops exist to carry complaints.
- The complained-about recipients are the Original-Rcpt-To fields; without
  them, the attached message's To. Providers may redact it, and then there is
  none.
- A JMRP report is a message whose only content is an attached message
  carrying X-HmXmrOriginalRecipient, the address that complained.
"""

from dataclasses import dataclass, replace
from email.message import Message

from delivery.deliverability import addresses, originals
from delivery.deliverability.message_parts import (
    HEADER_TYPES,
    Headers,
    Part,
    headers_of,
    payload,
    text_of,
)
from delivery.deliverability.originals import Original

COMPLAINT_TYPES = frozenset({"abuse", "fraud"})
_FEEDBACK_TYPE = "message/feedback-report"
_JMRP_RECIPIENT = "x-hmxmroriginalrecipient"


@dataclass(frozen=True, slots=True)
class Feedback:
    feedback_type: str | None
    complaint: bool
    recipients: tuple[str, ...]
    original_recipient: str | None
    original: Original
    envelope_id: str | None
    defects: tuple[str, ...] = ()


def read(found: list[Part]) -> Feedback | None:
    """The ARF report among the message's parts, or None when there is none."""
    fields = next((_fields(part.message) for part in found if part.type == _FEEDBACK_TYPE), None)
    if fields is None:
        return None
    attached = originals.attached(found)
    original = originals.of(attached, *fields.all("original-mail-from"))
    if original.message_id is None:
        original = replace(original, message_id=originals.message_id(fields.get("message-id")))
    named = addresses.unique(
        [a for value in fields.all("original-rcpt-to") if (a := addresses.normalize(value))]
    )
    recipients = named or tuple(addresses.in_header(attached.all("to") if attached else []))
    raw_type = fields.get("feedback-type")
    feedback_type = raw_type.split(";")[0].strip().lower() if raw_type else None
    complaint = feedback_type is None or feedback_type in COMPLAINT_TYPES
    return Feedback(
        feedback_type=feedback_type,
        complaint=complaint,
        recipients=recipients if complaint else (),
        original_recipient=recipients[0] if recipients else None,
        original=original,
        envelope_id=fields.get("original-envelope-id"),
        defects=() if raw_type else ("feedback report without a Feedback-Type",),
    )


def read_jmrp(found: list[Part]) -> Feedback | None:
    """A JMRP report, or None when the message is not one."""
    if len(found) < 2 or not found[0].type.startswith("multipart/"):  # noqa: PLR2004 - a container and a part
        return None
    if found[0].type == "multipart/report":
        return None  # a report says what it is; JMRP is a plain message with one attached
    attached = [part for part in found[1:] if part.type in HEADER_TYPES]
    if len(attached) != 1:
        return None
    headers = originals.attached(attached)
    recipient = addresses.normalize(headers.get(_JMRP_RECIPIENT) or "") if headers else None
    if recipient is None or any(_has_text(part) for part in found[1:] if part not in attached):
        return None
    return Feedback(
        feedback_type=None,
        complaint=True,
        recipients=(recipient,),
        original_recipient=recipient,
        original=originals.of(headers),
        envelope_id=None,
    )


def _fields(part: Message) -> Headers:
    items = payload(part)
    return headers_of(items[0]) if isinstance(items, list) and items else Headers([])


def _has_text(part: Part) -> bool:
    return part.type.startswith("text/") and bool(text_of(part.message, 4096).strip())
