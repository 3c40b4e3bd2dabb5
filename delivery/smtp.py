"""A simple email message from its rendered parts (test sends; campaigns use sending/message.py).

The standard library composes it: a text part and an HTML alternative,
headers encoded as RFC 5322 requires.
"""

from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from delivery.templates.model import RenderedEmail


def compose(
    email: RenderedEmail,
    *,
    sender: str,
    to: str,
    at: datetime,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message
