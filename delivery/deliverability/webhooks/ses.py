"""Amazon SES bounce, complaint, delivery and delay notifications, as SNS delivers them.

The SNS envelope is verified first (`sns.py`). A SubscriptionConfirmation
yields its SubscribeURL for the route to confirm; an UnsubscribeConfirmation
and SES types other than Bounce, Complaint, Delivery and DeliveryDelay yield
nothing. Identity notifications name their type in `notificationType` and
configuration-set events in `eventType`; both are read. A bounce is hard
when SES calls it Permanent and soft when Transient or Undetermined, unless
its enhanced status code says otherwise. A complaint whose feedback type is
"not-spam" is no complaint. Event ids derive from SES's `feedbackId` (else
its message id), the report's time and the recipient, so a report that SNS
retries, or that reaches us through two topics, gives the same ids.
"""

from collections.abc import Mapping
from datetime import datetime

from delivery.deliverability.webhooks import fields, sns
from delivery.deliverability.webhooks.config import WebhookConfig
from delivery.deliverability.webhooks.model import (
    BadPayload,
    Kind,
    ProviderClass,
    ProviderEvent,
    WebhookResult,
    derived_id,
    event,
)

PROVIDER = "ses"
_KINDS: dict[str, tuple[Kind, str, str]] = {
    # SES type: (our kind, the detail object's key, its list of recipients)
    "Bounce": ("bounce", "bounce", "bouncedRecipients"),
    "Complaint": ("complaint", "complaint", "complainedRecipients"),
    "Delivery": ("delivery", "delivery", "recipients"),
    "DeliveryDelay": ("deferred", "deliveryDelay", "delayedRecipients"),
}


async def receive(
    headers: Mapping[str, str], body: bytes, config: WebhookConfig, now: datetime
) -> WebhookResult:
    message = await sns.verify(body, config.certificate_source, config.ses_topic_arns)
    if message.type == "SubscriptionConfirmation":
        return WebhookResult(subscribe_url=message.subscribe_url)
    if message.type != "Notification":
        return WebhookResult()
    notification = fields.obj(_load_message(message.message), "Message")
    return WebhookResult(events=tuple(parse(notification, message.message_id)))


def _load_message(text: str) -> object:
    try:
        return fields.load(text.encode())
    except BadPayload:
        raise BadPayload("Message is not an SES notification") from None


def parse(notification: fields.JsonObject, sns_message_id: str) -> list[ProviderEvent]:
    where = "Message"
    ses_type = fields.opt_text(notification, "notificationType", where) or fields.opt_text(
        notification, "eventType", where
    )
    known = _KINDS.get(ses_type or "")
    if known is None:
        return []
    kind, detail_key, recipients_key = known
    detail = fields.opt_obj(notification, detail_key, where)
    mail = fields.opt_obj(notification, "mail", where)
    where = f"{where}.{detail_key}"
    if (
        kind == "complaint"
        and fields.opt_text(detail, "complaintFeedbackType", where) == "not-spam"
    ):
        return []
    provider_class: ProviderClass = (
        "hard" if fields.opt_text(detail, "bounceType", where) == "Permanent" else "soft"
    )
    at_text = fields.opt_text(detail, "timestamp", where) or fields.opt_text(
        mail, "timestamp", "Message.mail"
    )
    if at_text is None:
        raise BadPayload(f"{where}.timestamp: required")
    at = fields.iso_time(at_text, f"{where}.timestamp")
    report_id = fields.opt_text(detail, "feedbackId", where)
    ses_message_id = fields.opt_text(mail, "messageId", "Message.mail")
    message_id = _message_id(mail)
    return_path = fields.opt_text(mail, "source", "Message.mail")
    smtp_response = fields.opt_text(detail, "smtpResponse", where)

    events = []
    for index, item in enumerate(fields.opt_array(detail, recipients_key, where)):
        at_where = f"{where}.{recipients_key}[{index}]"
        if isinstance(item, str):  # a delivery lists bare addresses
            entry: fields.JsonObject = {"emailAddress": item}
        else:
            entry = fields.obj(item, at_where)
        recipient = fields.text(entry, "emailAddress", at_where)
        base = report_id or ses_message_id or sns_message_id
        events.append(
            event(
                provider=PROVIDER,
                kind=kind,
                recipient=recipient,
                event_id=derived_id(PROVIDER, kind, base, at_text, recipient.lower()),
                at=at,
                where=at_where,
                provider_class=provider_class,
                status=fields.opt_text(entry, "status", at_where),
                diagnostic=fields.opt_text(entry, "diagnosticCode", at_where) or smtp_response,
                message_id=message_id,
                return_path=return_path,
                provider_message_id=ses_message_id,
            )
        )
    return events


def _message_id(mail: fields.JsonObject) -> str | None:
    found = fields.header_value(mail.get("headers"), "Message-ID", "Message.mail.headers")
    if found is not None:
        return found
    common = fields.opt_obj(mail, "commonHeaders", "Message.mail")
    return fields.opt_text(common, "messageId", "Message.mail.commonHeaders")
