"""The abandoned cart over a real `cdp worker` and a real SMTP server on loopback, waits of seconds."""

import time
from collections.abc import Callable

import pytest
from aiosmtpd.controller import Controller

from delivery.journeys import repository
from domain.clock import SystemClock
from tests.delivery.journeys.support import cart_definition, shop
from tests.delivery.sending.test_campaigns import _Inbox
from tests.support.proxy import free_port
from tests.support.worker import worker_process

pytestmark = pytest.mark.slow
WAIT_SECONDS = 3


def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_worker_sends_the_reminder_after_the_wait_and_nothing_to_buyers_or_the_unconsented(
    database_url,
):
    inbox = _Inbox()
    port = free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    s = shop(database_url, {"wes": True, "bea": True, "nic": False}, name="worker-cart")
    s.clock = SystemClock()  # type: ignore[assignment] - the worker runs on real time
    journey = s.journey(cart_definition(s.template_id, wait={"seconds": WAIT_SECONDS}))

    def states() -> dict[str, list[repository.EnrollmentRow]]:
        return s.by_person(journey)

    try:
        with worker_process(database_url, extra_env={"SMTP_PORT": str(port)}, threads=4):
            started = time.monotonic()
            for person in ("wes", "bea", "nic"):
                s.track(person, "Product Added", {"sku": "SKU-1"})
            _until(lambda: len(states()) == 3, 20, "three enrollments")
            s.track("bea", "Order Completed", {"revenue": 12})
            _until(lambda: states()["bea"][0].state == "EXITED", 20, "the buyer to exit")
            _until(lambda: len(inbox.messages) >= 1 and all(
                r.state == "COMPLETED" for p in ("wes", "nic") for r in states()[p]), 30,
                "the reminder")  # fmt: skip
            took = time.monotonic() - started
            s.track("wes", "Product Added", {"sku": "SKU-2"})  # reentry "never"
            time.sleep(WAIT_SECONDS + 2)
    finally:
        server.stop()

    assert took >= WAIT_SECONDS, "the reminder came before the wait was over"
    assert [rcpt for _f, rcpt, _r in inbox.messages] == [["wes@example.org"]]
    assert [len(rows) for rows in states().values()] == [1, 1, 1]
    skipped = [r for r in s.deliveries(journey) if r.profile_id == s.people["nic"]]
    assert [(r.status, "consent" in (r.reason or "")) for r in skipped] == [("SKIPPED", True)]
