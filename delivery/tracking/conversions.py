"""Orders attributed to the email that brought them: revenue per message, campaign, variant.

An `Order Completed` event with a numeric `revenue` is a conversion of the
last message whose link the profile clicked (a person's click, not a
scanner's) within the attribution window before the order
(`ATTRIBUTION_DAYS`, 5 by default). The event's `order_id` counts an order
once however often it is sent. The attribution is a statement of the
transaction that stores the event, so it is committed with it; an order
stored before its click was processed (within a second or so of the click)
is not attributed.
"""

from datetime import timedelta
from uuid import UUID

from delivery.tracking import repository
from domain import changes
from domain.uow import Statement, UnitOfWork

ORDER_COMPLETED = "Order Completed"
DEFAULT_WINDOW = timedelta(days=5)


class ConversionListener:
    """Queues the orders among newly stored events for attribution (`domain.changes`)."""

    def __init__(self, window: timedelta = DEFAULT_WINDOW) -> None:
        self.window = window

    def event_statements(self, workspace_id: UUID, events: changes.NewEvents) -> list[Statement]:
        orders = [n for n, name in enumerate(events.names) if name == ORDER_COMPLETED]
        if not orders:
            return []
        return [
            repository.queue_orders(
                workspace_id, [events.ids[n] for n in orders], [events.times[n] for n in orders]
            )
        ]


listener = ConversionListener()
changes.register_events(listener)


def configure(days: int) -> None:
    """Set the attribution window (from the settings, at start)."""
    listener.window = timedelta(days=days)


async def attribute_orders(uow: UnitOfWork, settle: timedelta, limit: int = 2_000) -> int:
    """Attribute a batch of the workspace's queued orders placed more than `settle` ago (the
    clicks before them are processed then); how many were taken."""
    await repository.lock_workspace(uow)
    orders = await repository.claim_orders(uow, limit, before=uow.clock.now() - settle)
    if orders:
        uow.defer(repository.attribute(uow, [o for o, _ in orders], [at for _, at in orders],
                                       name=ORDER_COMPLETED, window=listener.window))  # fmt: skip
    return len(orders)
