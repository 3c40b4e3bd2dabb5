"""A local mail catcher for `cdp dev`: every message received over SMTP becomes an .eml file.

Nothing is relayed. File names sort by arrival time, and each file appears
whole or not at all (written to a hidden temporary name, then renamed), so a
watcher of the folder never reads half a message.
"""

import asyncio
import os
import secrets
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path

import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from api import smtp_servers

log = structlog.get_logger("cdp.mailcatcher")

ACCEPTED = "250 Message accepted for delivery"
# A transient failure: the sender may retry once the folder is writable again.
SAVE_FAILED = "451 Requested action aborted: could not save the message"


def _file_name(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{secrets.token_hex(4)}.eml"


def _as_bytes(content: bytes | str | None) -> bytes:
    if content is None:
        return b""
    if isinstance(content, str):
        return content.encode("utf-8", errors="surrogateescape")
    return content


def _subject(message: bytes) -> str:
    headers = BytesHeaderParser(policy=default_policy).parsebytes(message)
    return str(headers.get("subject", ""))


class _SaveToFolder:
    """The aiosmtpd handler: writes each accepted message into `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd looks up
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        message = _as_bytes(envelope.original_content or envelope.content)
        mail_from = envelope.mail_from or ""
        recipients = list(envelope.rcpt_tos)
        # Envelope recipients include Bcc, which the headers do not show.
        envelope_headers = (
            f"X-Envelope-From: <{mail_from}>\r\n"
            f"X-Envelope-To: {', '.join(f'<{rcpt}>' for rcpt in recipients)}\r\n"
        ).encode("utf-8", errors="surrogateescape")
        try:
            path = await asyncio.to_thread(self._write, envelope_headers + message)
        except OSError as exc:
            # The OS error names the problem; a traceback would add nothing.
            log.error("mail.not_saved", mail_from=mail_from, to=recipients, error=str(exc))  # noqa: TRY400
            return SAVE_FAILED
        log.info(
            "mail.received",
            mail_from=mail_from,
            to=recipients,
            subject=_subject(message),
            file=path.name,
        )
        return ACCEPTED

    def _write(self, data: bytes) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = _file_name(datetime.now(UTC))
        final = self.folder / name
        temporary = self.folder / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            temporary.replace(final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return final


class MailCatcher:
    """An SMTP server on `host:port` that stores every message in `folder`."""

    def __init__(self, folder: Path, host: str, port: int) -> None:
        self.folder = folder
        self.host = host
        self.port = port
        self._controller: Controller | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError("the mail catcher is already running")
        self.folder.mkdir(parents=True, exist_ok=True)
        controller = Controller(_SaveToFolder(self.folder), hostname=self.host, port=self.port)
        smtp_servers.start(controller, what="the mail catcher", address=self.address,
                           settings="SMTP_HOST/SMTP_PORT")  # fmt: skip
        self._controller = controller
        log.info("mailcatcher.started", address=self.address, folder=str(self.folder))

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
