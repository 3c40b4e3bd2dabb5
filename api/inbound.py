"""`cdp inbound`: the SMTP server for the return-path and feedback-loop addresses.

It accepts mail only for addresses at `bounces.<a sending domain>` (a VERP
return path, or a feedback-loop address there), refuses the rest at RCPT,
and answers 250 to DATA only once the message is stored with its processing
queued (`delivery.deliverability.inbound`). When it cannot store, it answers
451 so that the sending server tries again later: nothing is lost.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from uuid import UUID

import dramatiq
import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from api import smtp_servers
from api.http.group_commit import GroupCommit
from api.settings import Settings
from delivery.deliverability import inbound
from delivery.deliverability import repository as repo
from domain import broker as brokers
from domain.clock import Clock, SystemClock
from domain.jobs import JobRuntime

log = structlog.get_logger("cdp.inbound")

ACCEPTED = "250 2.0.0 Message accepted"
NOT_HERE = "550 5.1.1 This server takes mail only for return-path addresses of its sending domains"
TRY_LATER = "451 4.3.0 The message could not be stored; please try again later"
LOOKUP_FAILED = "451 4.3.0 The address could not be looked up; please try again later"


def _as_bytes(content: bytes | str | None) -> bytes:
    if content is None:
        return b""
    if isinstance(content, str):
        return content.encode("utf-8", errors="surrogateescape")
    return content


# Messages of one workspace that arrive while its earlier ones are being stored
# are stored together, in one transaction (bench/README.md, "Bounces").
STORE_CONCURRENCY = 1
STORE_MAX_ITEMS = 200


class _Handler:
    """The aiosmtpd handler: routes each recipient to its workspace and stores the message."""

    def __init__(self, runtime: JobRuntime, secret: str) -> None:
        self.runtime = runtime
        self.router = inbound.Router(runtime.uow, secret)
        self.clock = runtime.clock
        self.commits: GroupCommit[repo.NewReport] = GroupCommit(
            self._store, concurrency=STORE_CONCURRENCY, max_items=STORE_MAX_ITEMS
        )

    async def _store(self, key: str, reports: list[repo.NewReport]) -> None:
        async with self.runtime.uow(UUID(key)) as uow:
            await inbound.keep(uow, *reports)
            await uow.commit()

    async def handle_RCPT(  # noqa: N802 - the name aiosmtpd looks up
        self, _server: SMTP, _session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:  # fmt: skip
        try:
            workspace_id = await self.router.workspace_of(address)
        except Exception:
            log.exception("inbound.lookup_failed", rcpt=address)
            return LOOKUP_FAILED
        if workspace_id is None:
            return NOT_HERE
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd looks up
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        raw = _as_bytes(envelope.original_content or envelope.content)
        by_workspace: dict[UUID, list[str]] = {}
        try:
            for rcpt in envelope.rcpt_tos:
                workspace_id = await self.router.workspace_of_mail(rcpt, raw)
                if workspace_id is not None:
                    by_workspace.setdefault(workspace_id, []).append(rcpt)
            if not by_workspace:
                return NOT_HERE  # its domain was removed since RCPT
            for workspace_id, rcpts in by_workspace.items():
                report = inbound.mail_report(
                    mail_from=envelope.mail_from, rcpt_to=tuple(rcpts), raw=raw,
                    at=self.clock.now(),
                )  # fmt: skip
                await self.commits.submit(str(workspace_id), [report])
        except Exception:
            log.exception("inbound.not_stored", rcpt=envelope.rcpt_tos, size=len(raw))
            return TRY_LATER
        # At a bounce storm's rate a line per message would drown the log.
        log.debug("inbound.received", rcpt=envelope.rcpt_tos, size=len(raw))
        return ACCEPTED


@dataclass
class InboundServer:
    """The server on `host:port`, on a thread of its own with its own event loop and pool."""

    database_url: str
    role: str | None
    broker: dramatiq.Broker
    secret: str
    host: str
    port: int
    max_bytes: int
    clock: Clock | None = None
    _controller: Controller | None = None
    _runtime: JobRuntime | None = None
    _relay_task: "asyncio.Task[None] | None" = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError("the inbound server is already running")
        # The pool is made lazily, inside the controller's loop that will use it.
        runtime = JobRuntime(self.database_url, self.role, self.broker,
                             self.clock or SystemClock(), self.secret)  # fmt: skip
        controller = Controller(
            _Handler(runtime, self.secret), hostname=self.host, port=self.port,
            data_size_limit=self.max_bytes, ident="cdp inbound",
        )  # fmt: skip
        smtp_servers.start(controller, what="the inbound server", address=self.address,
                           settings="INBOUND_HOST/INBOUND_PORT")  # fmt: skip
        self._controller, self._runtime = controller, runtime
        asyncio.run_coroutine_threadsafe(self._relay(runtime), controller.loop).result(timeout=10)
        log.info("inbound.started", address=self.address)

    async def _relay(self, runtime: JobRuntime) -> None:
        """Relay, after each commit, the processing jobs that this server's commits queued."""
        self._relay_task = asyncio.get_running_loop().create_task(
            runtime.outbox_relay().run(interval=None)
        )

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        runtime, self._runtime = self._runtime, None
        if controller is None:
            return
        if runtime is not None and controller.loop.is_running():
            # The pool's connections belong to the controller's loop: closed there.
            future = asyncio.run_coroutine_threadsafe(self._close(runtime), controller.loop)
            with contextlib.suppress(Exception):
                future.result(timeout=10)
        controller.stop()

    async def _close(self, runtime: JobRuntime) -> None:
        task, self._relay_task = self._relay_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runtime.close()


def from_settings(
    settings: Settings, database_url: str, *, host: str | None = None, port: int | None = None
) -> InboundServer:
    role = settings.app_db_role or None
    broker = brokers.make_broker(settings.broker_url, database_url=database_url, role=role)
    return InboundServer(
        database_url, role, broker, settings.secret(), host or settings.inbound_host,
        port or settings.inbound_port, settings.inbound_max_bytes,
    )  # fmt: skip
