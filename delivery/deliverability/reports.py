"""What a received report says: a bounce, a complaint, an auto-reply, or other mail.

`classify` is pure: bytes in, a `Report` out, no I/O, and it never raises.

Rules:
- The first that applies decides: an ARF feedback report (or a JMRP one), an
  RFC 3464 DSN, a free-text bounce, an RFC 3834 auto-reply, else other mail.
- A bounce is hard for 5.x.x and soft for 4.x.x, whatever its Action says
  (`status_codes`); a complaint is `complaint`; everything else is `none`
  with no recipients, success DSNs included.
- `status` is the first recipient's; `statuses` has one per recipient, and
  `failures` each recipient's class, delay and diagnostic.
- `original_*` describe the message the report is about, for finding the
  delivery: its Message-ID, every envelope-sender candidate (where our VERP
  address is), and the recipient ARF names or a DSN's Original-Recipient.
"""

from dataclasses import dataclass
from typing import Literal

from delivery.deliverability import arf, autoreply, bounce_text, dsn, message_parts, originals
from delivery.deliverability.arf import Feedback
from delivery.deliverability.failures import Failure
from delivery.deliverability.message_parts import Headers

Kind = Literal["dsn", "arf", "autoreply", "other"]
BounceClass = Literal["hard", "soft", "complaint", "none"]
ManifestValue = str | list[str] | None

__all__ = ["BounceClass", "Failure", "Kind", "Report", "classify"]


@dataclass(frozen=True, slots=True)
class Report:
    kind: Kind = "other"
    bounce_class: BounceClass = "none"
    recipients: tuple[str, ...] = ()
    status: str | None = None
    statuses: tuple[str | None, ...] = ()
    failures: tuple[Failure, ...] = ()
    delayed: bool = False
    feedback_type: str | None = None
    original_message_id: str | None = None
    original_return_paths: tuple[str, ...] = ()
    original_recipient: str | None = None
    original_envelope_id: str | None = None
    defects: tuple[str, ...] = ()

    def manifest_fields(self) -> dict[str, ManifestValue]:
        """kind, class, recipients and status, as the fixtures' manifest.json has them."""
        return {
            "kind": self.kind,
            "class": self.bounce_class,
            "recipients": list(self.recipients),
            "status": self.status,
        }


def classify(raw: bytes) -> Report:
    """What the message `raw` reports. Never raises; what it could not read is in `defects`."""
    try:
        return _classify(raw)
    except Exception as exc:  # noqa: BLE001 - any input bytes must give a report
        return Report(defects=(f"internal error: {type(exc).__name__}",))


def _classify(raw: bytes) -> Report:
    message, notes = message_parts.parse(raw)
    found = message_parts.parts(message)
    headers = message_parts.headers_of(message)
    defects = [*notes, *message_parts.defects(found)]
    feedback = arf.read(found) or arf.read_jmrp(found)
    if feedback is not None:
        return _feedback_report(feedback, defects)
    status_report = dsn.read(found)
    if status_report is not None and status_report.recipient_blocks:
        return _dsn_report(status_report, originals.attached(found), defects)
    if status_report is not None:
        defects += [*status_report.defects, "delivery-status part without recipients"]
    text = bounce_text.read(message, headers, found)
    if text is not None:
        return _text_report(text, defects)
    if status_report is not None:
        return _dsn_report(status_report, originals.attached(found), defects)
    if autoreply.is_autoreply(headers):
        return _autoreply_report(headers, defects)
    return Report(defects=_unique(defects))


def _feedback_report(feedback: Feedback, defects: list[str]) -> Report:
    return Report(
        kind="arf",
        bounce_class="complaint" if feedback.complaint else "none",
        recipients=feedback.recipients,
        statuses=(None,) * len(feedback.recipients),
        feedback_type=feedback.feedback_type,
        original_message_id=feedback.original.message_id,
        original_return_paths=feedback.original.return_paths,
        original_recipient=feedback.original_recipient,
        original_envelope_id=feedback.envelope_id,
        defects=_unique([*defects, *feedback.defects]),
    )


def _dsn_report(found: dsn.Dsn, attached: Headers | None, defects: list[str]) -> Report:
    original = originals.of(attached, *([found.sender] if found.sender else []))
    failures = found.failures
    first = failures[0] if failures else None
    return Report(
        kind="dsn",
        bounce_class=first.bounce_class if first else "none",
        recipients=tuple(f.recipient for f in failures),
        status=first.status if first else found.first_status,
        statuses=tuple(f.status for f in failures),
        failures=failures,
        delayed=bool(failures) and all(f.delayed for f in failures),
        original_message_id=original.message_id,
        original_return_paths=original.return_paths,
        original_recipient=first.original_recipient if first else None,
        original_envelope_id=found.envelope_id,
        defects=_unique([*defects, *found.defects]),
    )


def _text_report(found: bounce_text.TextBounce, defects: list[str]) -> Report:
    if found.used_fallback:
        defects = [*defects, "recipients found by flufl.bounce"]
    return Report(
        kind="dsn",
        bounce_class=found.bounce_class,
        recipients=tuple(f.recipient for f in found.failures),
        status=found.status,
        statuses=tuple(f.status for f in found.failures),
        failures=found.failures,
        delayed=found.delayed,
        original_message_id=found.original.message_id,
        original_return_paths=found.original.return_paths,
        defects=_unique(defects),
    )


def _autoreply_report(headers: Headers, defects: list[str]) -> Report:
    return Report(
        kind="autoreply",
        original_message_id=originals.message_id(headers.get("in-reply-to")),
        defects=_unique(defects),
    )


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
