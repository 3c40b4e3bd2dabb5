"""What the server records about messages is not the person's activity."""

import uuid
from datetime import UTC, datetime

from cdp.traits import ProfileState
from delivery.journeys.timed import InactivityListener
from delivery.tracking import processing
from domain import changes

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _events(*names: str) -> changes.NewEvents:
    return changes.NewEvents([str(uuid.uuid4()) for _ in names], [AT] * len(names),
                             [uuid.uuid4() for _ in names], list(names))  # fmt: skip


def test_a_delivered_or_bounced_message_moves_neither_last_seen_nor_an_inactivity_trigger():
    state = ProfileState()
    for name in (processing.DELIVERED, processing.BOUNCED, processing.COMPLAINED):
        state.apply_event(name, {}, AT)
    assert "last_seen" not in state.computed
    state.apply_event(processing.OPENED, {}, AT)
    assert state.computed["last_seen"] == AT.isoformat(timespec="microseconds")

    listener = InactivityListener()
    ws = uuid.uuid4()
    assert listener.event_statements(ws, _events(processing.DELIVERED, processing.BOUNCED)) == []
    [statement] = listener.event_statements(ws, _events(processing.DELIVERED, "Product Viewed"))
    assert len(statement.params["pids"]) == 1  # type: ignore[index]
