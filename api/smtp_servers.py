"""Starting an aiosmtpd server on a thread of its own, with one clear line when it cannot."""

import contextlib
import os

from aiosmtpd.controller import Controller


def start(controller: Controller, *, what: str, address: str, settings: str) -> None:
    """Start `controller`; a port it cannot take is a RuntimeError naming the settings."""
    try:
        controller.start()
    except OSError as exc:
        _discard(controller)
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise RuntimeError(
            f"{what} cannot listen on {address} ({reason}); set {settings}"
        ) from None
    except BaseException:
        _discard(controller)
        raise


def _discard(controller: Controller) -> None:
    # A failed start leaves the controller's private loop open and maybe its thread running.
    with contextlib.suppress(AssertionError, RuntimeError):
        controller.stop(no_assert=True)
    if not controller.loop.is_closed() and not controller.loop.is_running():
        controller.loop.close()
