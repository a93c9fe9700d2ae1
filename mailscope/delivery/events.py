"""Provider event payloads as provider-neutral `Event` records.

Shapes from each provider's webhook reference:
- SendGrid: a JSON array of events; `event` (processed, dropped, delivered, deferred, bounce,
  open, click, spamreport, unsubscribe, group_unsubscribe, group_resubscribe), `email`,
  `timestamp` (unix s), `sg_event_id`, `sg_message_id` (the X-Message-Id of the send, then
  `.filter...`), `reason` / `response` / `status` (diagnostics); the message's custom_args
  appear as top-level fields of each event.
- Mailgun: `{"signature": {...}, "event-data": {...}}`; `event` (accepted, rejected, delivered,
  failed with `severity` permanent/temporary, opened, clicked, unsubscribed, complained),
  `id`, `timestamp`, `recipient`, `delivery-status` (`code`, `message`, `description`),
  `reason`, `message.headers.message-id`, and the message's `v:` variables as `user-variables`.
- Postmark: one JSON object per request; `RecordType` (Delivery, Bounce, SpamComplaint, Open,
  Click, SubscriptionChange), `MessageID`, `Recipient` or `Email`, `DeliveredAt` /
  `BouncedAt` / `ReceivedAt` / `ChangedAt`, bounce `Type` and `Details`, and `Metadata`.
- Amazon SES through SNS: the SNS message's `Message` is the SES event (event publishing:
  `eventType`; identity notifications: `notificationType`): Delivery, Bounce (bounceType
  Permanent/Transient/Undetermined), Complaint, DeliveryDelay, Reject, Open, Click,
  Subscription, Rendering Failure; `mail.messageId`, `mail.tags` (message tags, each a list
  of values), and per-recipient diagnostics (`diagnosticCode` such as `smtp; 550 5.1.1 ...`).

Events of a kind that says nothing about delivery (SendGrid processed, Mailgun accepted, SES
Send...) come back with `status=None` and are skipped. Every function tolerates any JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from mailscope import attributes as attr
from mailscope.delivery.tracking import KEY

MAX_EVENTS_PER_REQUEST = 1000  # SendGrid batches; more than this is not a webhook request


class Malformed(ValueError):
    """The payload is not the provider's shape."""


@dataclass
class Event:
    provider: str
    status: str | None
    event_id: str | None = None
    timestamp: float | None = None  # unix seconds of the event
    recipients: list = field(default_factory=list)  # addresses: only their domains are exported
    tracking: str | None = None  # the `mailscope` metadata value, when the send carried it
    message_id: str | None = None  # the provider's message id (hashed before export)
    diagnostic: str | None = None  # the reply text of a bounce, deferral or drop


def _text(value) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_time(value) -> float | None:
    """Unix seconds of a number or an ISO 8601 string (any fraction length, `Z` or offset)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    text = _FRACTION.sub(lambda m: m.group(1), text.replace("Z", "+00:00").replace("z", "+00:00"), count=1)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


_DIAGNOSTIC_TYPE = re.compile(r"^\s*(?:smtp|x-postfix|x-unix)\s*;\s*", re.IGNORECASE)


def clean_diagnostic(text) -> str | None:
    """The reply text without its RFC 3464 diagnostic type (`smtp; 550 ...` -> `550 ...`)."""
    text = _text(text)
    return _DIAGNOSTIC_TYPE.sub("", text) if text else None


def _joined(*parts) -> str | None:
    texts = []
    for part in parts:
        part = clean_diagnostic(part)
        if part and all(part not in t for t in texts):
            texts.append(part)
    return " ".join(texts) or None


# --- SendGrid -------------------------------------------------------------------------------
SENDGRID_STATUS = {
    "delivered": attr.DELIVERY_DELIVERED,
    "bounce": attr.DELIVERY_BOUNCED,
    "deferred": attr.DELIVERY_DEFERRED,
    "dropped": attr.DELIVERY_DROPPED,
    "spamreport": attr.DELIVERY_COMPLAINED,
    "open": attr.DELIVERY_OPENED,
    "click": attr.DELIVERY_CLICKED,
    "unsubscribe": attr.DELIVERY_UNSUBSCRIBED,
    "group_unsubscribe": attr.DELIVERY_UNSUBSCRIBED,
}


def sendgrid_message_id(value) -> str | None:
    """The X-Message-Id of the send from an event's `sg_message_id` (`<id>.filterNNNN...`)."""
    text = _text(value)
    if text is None:
        return None
    cut = text.find(".filter")
    return text[:cut] if cut > 0 else text


def sendgrid(document) -> list:
    if not isinstance(document, list) or len(document) > MAX_EVENTS_PER_REQUEST:
        raise Malformed("SendGrid posts a JSON array of events")
    events = []
    for item in document:
        if not isinstance(item, dict):
            raise Malformed("event is not an object")
        status = SENDGRID_STATUS.get(str(item.get("event")))
        diagnostic = None
        if status in attr.DELIVERY_FAILURES:
            reason = item.get("reason") if status != attr.DELIVERY_DEFERRED else item.get("response")
            status_code = _text(item.get("status"))
            reason_text = clean_diagnostic(reason)
            if status_code and reason_text and status_code not in reason_text:
                diagnostic = f"{status_code} {reason_text}"
            else:
                diagnostic = reason_text or status_code
        events.append(Event(
            provider="sendgrid", status=status, event_id=_text(item.get("sg_event_id")),
            timestamp=parse_time(item.get("timestamp")), recipients=[a for a in [_text(item.get("email"))] if a],
            tracking=_text(item.get(KEY)), message_id=sendgrid_message_id(item.get("sg_message_id")),
            diagnostic=diagnostic,
        ))
    return events


# --- Mailgun --------------------------------------------------------------------------------
MAILGUN_STATUS = {
    "delivered": attr.DELIVERY_DELIVERED,
    "rejected": attr.DELIVERY_DROPPED,
    "opened": attr.DELIVERY_OPENED,
    "clicked": attr.DELIVERY_CLICKED,
    "unsubscribed": attr.DELIVERY_UNSUBSCRIBED,
    "complained": attr.DELIVERY_COMPLAINED,
}


def mailgun(document) -> list:
    data = document.get("event-data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise Malformed("no event-data object")
    kind = str(data.get("event"))
    status = MAILGUN_STATUS.get(kind)
    reason = _text(data.get("reason"))
    if kind == "failed":
        if reason and reason.startswith("suppress-"):
            status = attr.DELIVERY_DROPPED
        elif data.get("severity") == "temporary":
            status = attr.DELIVERY_DEFERRED
        else:
            status = attr.DELIVERY_BOUNCED
    diagnostic = None
    if status in attr.DELIVERY_FAILURES:
        delivery = data.get("delivery-status") if isinstance(data.get("delivery-status"), dict) else {}
        code = delivery.get("code")
        text = _joined(delivery.get("message"), delivery.get("description"))
        if isinstance(code, int) and 200 <= code < 600 and text and not text.startswith(str(code)):
            diagnostic = f"{code} {text}"
        else:
            diagnostic = text or reason
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    variables = data.get("user-variables") if isinstance(data.get("user-variables"), dict) else {}
    recipient = _text(data.get("recipient"))
    return [Event(
        provider="mailgun", status=status, event_id=_text(data.get("id")), timestamp=parse_time(data.get("timestamp")),
        recipients=[recipient] if recipient else [], tracking=_text(variables.get(KEY)),
        message_id=_text(headers.get("message-id")), diagnostic=diagnostic,
    )]


# --- Postmark -------------------------------------------------------------------------------
POSTMARK_BOUNCED = frozenset({
    "HardBounce", "BadEmailAddress", "Blocked", "DMARCPolicy", "DnsError", "SMTPApiError", "Unknown",
    "VirusNotification", "ChallengeVerification",
})
POSTMARK_DEFERRED = frozenset({"SoftBounce", "Transient"})
POSTMARK_TIME_FIELDS = ("DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt")


def postmark(document) -> list:
    if not isinstance(document, dict) or not isinstance(document.get("RecordType"), str):
        raise Malformed("no RecordType")
    kind = document["RecordType"]
    status = None
    diagnostic = None
    if kind == "Delivery":
        status = attr.DELIVERY_DELIVERED
    elif kind == "Bounce":
        bounce_type = str(document.get("Type"))
        if bounce_type in POSTMARK_BOUNCED:
            status = attr.DELIVERY_BOUNCED
        elif bounce_type in POSTMARK_DEFERRED:
            status = attr.DELIVERY_DEFERRED
        elif bounce_type == "SpamComplaint":
            status = attr.DELIVERY_COMPLAINED
        elif bounce_type in ("ManuallyDeactivated", "Unsubscribe"):
            status = attr.DELIVERY_DROPPED if bounce_type == "ManuallyDeactivated" else attr.DELIVERY_UNSUBSCRIBED
        if status in attr.DELIVERY_FAILURES:
            diagnostic = clean_diagnostic(document.get("Details")) or _text(document.get("Description"))
    elif kind == "SpamComplaint":
        status = attr.DELIVERY_COMPLAINED
    elif kind == "Open":
        status = attr.DELIVERY_OPENED
    elif kind == "Click":
        status = attr.DELIVERY_CLICKED
    elif kind == "SubscriptionChange" and document.get("SuppressSending") is True:
        status = attr.DELIVERY_UNSUBSCRIBED
    timestamp = next((parse_time(document[f]) for f in POSTMARK_TIME_FIELDS if document.get(f)), None)
    recipient = _text(document.get("Recipient")) or _text(document.get("Email"))
    metadata = document.get("Metadata") if isinstance(document.get("Metadata"), dict) else {}
    message_id = _text(document.get("MessageID"))
    # Postmark signs nothing: an event is identified by its kind, its record id, message and time
    stamp = next((str(document[f]) for f in POSTMARK_TIME_FIELDS if document.get(f)), "")
    event_id = f"{kind}:{document.get('ID', '')}:{message_id or ''}:{stamp}:{recipient or ''}"
    return [Event(
        provider="postmark", status=status, event_id=event_id, timestamp=timestamp,
        recipients=[recipient] if recipient else [], tracking=_text(metadata.get(KEY)), message_id=message_id,
        diagnostic=diagnostic,
    )]


# --- Amazon SES (the SNS message's Message) --------------------------------------------------
def _addresses(items, key="emailAddress") -> list:
    out = []
    for item in items if isinstance(items, list) else ():
        value = item.get(key) if isinstance(item, dict) else item
        if isinstance(value, str) and value:
            out.append(value)
    return out


def ses(message, sns_message_id: str | None) -> list:
    if not isinstance(message, dict):
        raise Malformed("SES event is not an object")
    kind = message.get("eventType") or message.get("notificationType")
    mail = message.get("mail") if isinstance(message.get("mail"), dict) else {}
    tags = mail.get("tags") if isinstance(mail.get("tags"), dict) else {}
    tag = tags.get(KEY)
    tracking = _text(tag[0]) if isinstance(tag, list) and tag else _text(tag)
    status, part, recipients, diagnostic = None, {}, [], None
    if kind == "Delivery":
        status, part = attr.DELIVERY_DELIVERED, message.get("delivery")
        recipients = _addresses((part or {}).get("recipients"), key=None) if isinstance(part, dict) else []
    elif kind == "Bounce":
        status, part = attr.DELIVERY_BOUNCED, message.get("bounce")
        listed = (part or {}).get("bouncedRecipients") if isinstance(part, dict) else None
        recipients = _addresses(listed)
        first = listed[0] if isinstance(listed, list) and listed and isinstance(listed[0], dict) else {}
        diagnostic = clean_diagnostic(first.get("diagnosticCode")) or _text(first.get("status"))
        if diagnostic is None and isinstance(part, dict):
            diagnostic = " ".join(str(part[k]) for k in ("bounceType", "bounceSubType") if part.get(k)) or None
    elif kind == "DeliveryDelay":
        status, part = attr.DELIVERY_DEFERRED, message.get("deliveryDelay")
        listed = (part or {}).get("delayedRecipients") if isinstance(part, dict) else None
        recipients = _addresses(listed)
        first = listed[0] if isinstance(listed, list) and listed and isinstance(listed[0], dict) else {}
        diagnostic = clean_diagnostic(first.get("diagnosticCode")) or _text((part or {}).get("delayType"))
    elif kind == "Complaint":
        status, part = attr.DELIVERY_COMPLAINED, message.get("complaint")
        recipients = _addresses((part or {}).get("complainedRecipients") if isinstance(part, dict) else None)
    elif kind in ("Reject", "Rendering Failure"):
        status = attr.DELIVERY_DROPPED
        part = message.get("reject") if kind == "Reject" else message.get("failure")
        if isinstance(part, dict):
            diagnostic = _text(part.get("reason")) or _text(part.get("errorMessage"))
        diagnostic = diagnostic or kind
    elif kind in ("Open", "Click"):
        status = attr.DELIVERY_OPENED if kind == "Open" else attr.DELIVERY_CLICKED
        part = message.get(kind.lower())
    elif kind == "Subscription":
        status, part = attr.DELIVERY_UNSUBSCRIBED, message.get("subscription")
    if not recipients and status is not None and status not in (attr.DELIVERY_DELIVERED,):
        recipients = _addresses(mail.get("destination"), key=None)
    timestamp = parse_time(part.get("timestamp")) if isinstance(part, dict) else None
    return [Event(
        provider="ses", status=status, event_id=sns_message_id, timestamp=timestamp, recipients=recipients,
        tracking=tracking, message_id=_text(mail.get("messageId")), diagnostic=diagnostic,
    )]
