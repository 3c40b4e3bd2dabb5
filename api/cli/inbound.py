"""`cdp inbound`: the SMTP server for bounces and feedback loops, until SIGINT or SIGTERM."""

import logging
import signal
import sys
import threading

from api import embedded
from api.inbound import from_settings
from api.logging import configure as configure_logging
from api.settings import Settings


def serve_inbound(settings: Settings, *, host: str | None, port: int | None) -> None:
    """`cdp inbound`: serve until SIGINT or SIGTERM."""
    configure_logging(settings.log_level, settings.json_logs)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = from_settings(settings, embedded.database_url(settings), host=host, port=port)
    server.start()
    print(f"cdp inbound: SMTP on {server.address}; Ctrl-C stops it", file=sys.stderr)
    try:
        stop.wait()
    finally:
        server.stop()
        print("cdp inbound: stopped", file=sys.stderr)
