"""Exporters and erasers for tracking's personal data, registered with the kernel."""

from delivery.personal_data import HeldByProfile
from domain.personal_data import registry


class TrackingHits(HeldByProfile):
    table = "tracking_hits"
    category = "each open and click of a message: when, from which address and browser, which link"
    purpose = "counting opens and clicks, and telling people from mail proxies and link scanners"
    retention = "30 days after processing, or ATTRIBUTION_DAYS if longer; erased on request"
    _columns = ("kind", "delivery_id", "link", "url", "at", "ip", "user_agent", "machine",
                "reason", "proxy")  # fmt: skip


class DeliveryEngagement(HeldByProfile):
    table = "delivery_engagement"
    category = (
        "whether and when a person opened, clicked, bought from or unsubscribed from a message"
    )
    purpose = "campaign statistics and crediting orders to the message that brought them"
    retention = "while the campaign exists; erased on request"
    _columns = ("delivery_id", "campaign_id", "variant", "first_open_at", "first_click_at",
                "last_click_at", "opens", "clicks", "machine_opens", "machine_clicks",
                "converted_at", "unsubscribed_at")  # fmt: skip


class TrackingConversions(HeldByProfile):
    table = "tracking_conversions"
    category = "the orders credited to a message: order id, revenue, when"
    purpose = "revenue per campaign, variant and journey step"
    retention = "while the workspace keeps it; erased on request"
    _columns = ("order_id", "delivery_id", "campaign_id", "variant", "revenue", "at")


registry.register(TrackingHits())
registry.register(DeliveryEngagement())
registry.register(TrackingConversions())
