"""Automatic replies (RFC 3834: vacation notices, out-of-office, auto-responders), from headers.

Rules:
- Auto-Submitted: auto-replied, an X-Autoreply or X-Autorespond field,
  Precedence: auto_reply, or a subject that starts as responders write it
  ("Automatic reply:", "Auto reply:", "Out of Office", ...) make an auto-reply.
- Precedence: bulk or junk alone does not: newsletters carry it too. Old
  vacation programs mark their replies with it, so it counts on a reply
  (In-Reply-To) sent with a null return path.
- Auto-Submitted: auto-generated is a notification, not a reply. Apple Mail's
  unsubscribe request (X-Apple-Unsubscribe) says auto-replied but is a
  request to stop mail, not an auto-reply.
- Bounces say auto-replied too: they are recognized before this is asked.
"""

import re

from delivery.deliverability.message_parts import Headers, decoded

_SUBJECT = re.compile(
    r"\s*(?:auto(?:matic)?[ _-]?(?:reply|response|respons|answer)|autoreply|autorespon"
    r"|out of (?:the )?office|abwesenheit|automatische antwort|r[ée]ponse automatique"
    r"|risposta automatica|respuesta autom[aá]tica|resposta autom[aá]tica"
    r"|automatisch antwoord|autosvar|away from (?:the |my )?office)",
    re.IGNORECASE,
)
_KEYWORD = re.compile(r"[\w-]+")
_NEGATIVE = frozenset({"no", "false", "0", "off"})


def is_autoreply(headers: Headers) -> bool:
    if "x-apple-unsubscribe" in headers:
        return False
    submitted = _KEYWORD.match(headers.get("auto-submitted") or "")
    if submitted is not None and submitted.group(0).lower() == "auto-replied":
        return True
    for name in ("x-autoreply", "x-autorespond"):
        value = headers.get(name)
        if value is not None and value.strip().lower() not in _NEGATIVE:
            return True
    precedence = (headers.get("precedence") or "").strip().lower()
    if precedence == "auto_reply":
        return True
    if _SUBJECT.match(decoded(headers.get("subject"))):
        return True
    null_return_path = (headers.get("return-path") or "").replace(" ", "") == "<>"
    return precedence in {"bulk", "junk"} and "in-reply-to" in headers and null_return_path
