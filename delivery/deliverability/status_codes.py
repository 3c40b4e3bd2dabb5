"""SMTP status codes in reports: RFC 3463 enhanced codes, basic reply codes, and their class.

Rules:
- 5.x.x is a hard bounce and 4.x.x a soft one, whatever else the report says;
  2.x.x is a success. The same holds for basic reply codes (5xx, 4xx).
- A DSN's Status field is the reporting MTA's summary. Several MTAs write a
  generic code there (5.0.0) or their own "gave up" code (4.4.7) while the
  Diagnostic-Code quotes the remote server's reply with a precise one. The
  Diagnostic-Code's code is used when it has the same class as the Status, so
  the class never changes; of several, the last, because an MTA that relays a
  remote reply wraps it in its own text.
"""

import re
from typing import Literal

FailureClass = Literal["hard", "soft"]

# Boundaries keep IP addresses, dates and version numbers (192.0.2.1, 5.5.1960.3) out.
_ENHANCED = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
_REPLY = re.compile(r"(?<![\w.:/=+-])([245][0-5]\d)(?=[ -]\S)")


def enhanced_codes(text: str) -> list[str]:
    return [f"{m[1]}.{int(m[2])}.{int(m[3])}" for m in _ENHANCED.finditer(text)]


def first_failure_code(text: str) -> str | None:
    """The first 4.x.x or 5.x.x code in `text`; success codes in a transcript are skipped."""
    for code in enhanced_codes(text):
        if code[0] != "2":
            return code
    return None


def reply_class(text: str) -> FailureClass | None:
    """The class of the first 4xx or 5xx reply code in `text`."""
    for found in _REPLY.finditer(text):
        digit = found.group(1)[0]
        if digit != "2":
            return "hard" if digit == "5" else "soft"
    return None


def class_of(code: str) -> FailureClass | None:
    """hard for 5.x.x, soft for 4.x.x, None for a success."""
    if code.startswith("5"):
        return "hard"
    if code.startswith("4"):
        return "soft"
    return None


def dsn_status(status_field: str | None, diagnostic: str | None) -> str | None:
    """The status of one DSN recipient, from its Status field and its Diagnostic-Code."""
    stated = enhanced_codes(status_field or "")
    quoted = [code for code in enhanced_codes(diagnostic or "") if code[0] != "2"]
    if not stated:
        return quoted[0] if quoted else None
    same_class = [code for code in quoted if code[0] == stated[0][0]]
    return same_class[-1] if same_class else stated[0]
