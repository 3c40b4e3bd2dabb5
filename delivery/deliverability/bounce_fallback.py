"""flufl.bounce as the last resort for a text bounce's recipients, with what it wrongly finds removed.

flufl.bounce's heuristic detectors take any address near their trigger
phrases: the sender, postmaster, addresses quoted in the text or in the
returned message. An address it finds is kept only when it is nobody we
know to be someone else, is no mail-system mailbox, appears in the report
itself, and is never written there as a sender (`MAIL FROM:<...>`,
`sent by ...`). Its detectors run every pattern on every line, so they get
the bounce's headers and the start of its report (`FALLBACK_CHARS`) only.
"""

import logging
import re
from collections.abc import Collection
from email.message import Message

from flufl.bounce import all_failures

from delivery.deliverability import addresses

# It logs every detector it runs at INFO, and a traceback for each that fails.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
_SENDER_BEFORE = re.compile(
    r"(?:from|sender|sent by|return-path|reply-to)[\s:<\"']{0,4}$", re.IGNORECASE
)
_CONTEXT_CHARS = 16
FALLBACK_CHARS = 4096
_BODY_FIELDS = frozenset({"content-type", "content-transfer-encoding", "mime-version"})


def recipients(message: Message, report: str, excluded: Collection[str]) -> list[str]:
    """The failed recipients flufl.bounce finds in `message`, filtered, in report order."""
    try:
        temporary, permanent = all_failures(_report_only(message, report))
    except Exception:  # noqa: BLE001 - its detectors raise on malformed input; nothing found then
        return []
    lowered = report.lower()
    found: dict[str, int] = {}
    for raw in (*permanent, *temporary):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        address = addresses.normalize(text)
        if address is None or address in excluded or addresses.is_system(address):
            continue
        at = lowered.find(address)
        if at >= 0 and not _written_as_sender(lowered, address):
            found.setdefault(address, at)
    return sorted(found, key=found.__getitem__)


def _report_only(message: Message, report: str) -> Message:
    trimmed = Message()
    for name, value in message.raw_items():
        if name.lower() not in _BODY_FIELDS:
            trimmed[name] = value
    trimmed["Content-Type"] = "text/plain; charset=utf-8"
    trimmed.set_payload(report[:FALLBACK_CHARS])
    return trimmed


def _written_as_sender(report: str, address: str) -> bool:
    at = report.find(address)
    while at >= 0:
        if _SENDER_BEFORE.search(report, max(0, at - _CONTEXT_CHARS), at):
            return True
        at = report.find(address, at + len(address))
    return False
