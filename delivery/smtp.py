"""An email message from its rendered parts, and sending it over SMTP.

The standard library composes (`email.message.EmailMessage`: a text part
and an HTML alternative, headers encoded as RFC 5322 requires) and sends
(`smtplib`, in a thread so the event loop keeps serving).
"""

import asyncio
import smtplib
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from delivery.templates.model import RenderedEmail

SEND_TIMEOUT = 15.0  # seconds for the whole SMTP conversation


class SendError(RuntimeError):
    """The relay refused the message or could not be reached."""


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


def _send(message: EmailMessage, host: str, port: int, timeout: float) -> None:
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as relay:
            relay.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        raise SendError(
            f"the SMTP relay at {host}:{port} did not take the message: {error}"
        ) from None


async def send(message: EmailMessage, *, host: str, port: int) -> None:
    """Hand the message to the relay; SMTP's own socket timeout bounds the wait."""
    await asyncio.to_thread(_send, message, host, port, SEND_TIMEOUT)
