"""The delivery receiver: verify a provider's webhook request, then one `email.delivery` span per event.

`Receiver.handle(path, method, headers, body)` is the whole protocol, shared by the WSGI
and ASGI adapters (`mailscope.delivery.web`):

1. `POST /<provider>` (`mailgun`, `sendgrid`, `postmark`, `ses`), else 404/405;
2. a body over `MAX_BODY_BYTES`: 413; no key configured for the provider: 401;
3. authenticity (`verify`): unsigned or badly signed: 401; a signed time more than
   `WINDOW_S` away from now: 401; an event id (or a request signature) handled before,
   remembered in a bounded LRU: 401; not the provider's JSON: 400;
4. each event that says something about delivery becomes a span, metrics are counted,
   the ids are remembered, and only then the answer is 200.

Every rejection is counted in `mailscope.delivery.rejected_requests` (provider, reason).
Nothing raises out of `handle`: an internal failure answers 500, so the provider retries.

The span (`email.delivery`, INTERNAL): a child of the send span when the event carries the
`mailscope` tracking value (see `tracking`), else a root span; either way linked to the
current span (the webhook's HTTP server span, when the server is instrumented). It starts
and ends at the event's time, and carries `email.provider`, `email.delivery.status`,
`email.delivery.latency` (send to event, when the send time travelled), the recipients'
domains, the reply code and enhanced status of a diagnostic, and the provider message id
hashed as send spans hash it. Bounces, deferrals and drops are ERROR spans with the
diagnostic (addresses masked) as the status description and `error.type`
`smtplib.SMTPRecipientsRefused`: what a synchronous smtplib send raises when the server
refuses its recipient with the same reply, so the errors stage gives the webhook's bounce
the same category, retryable flag and fingerprint as the synchronous refusal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from types import SimpleNamespace

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from mailscope import attributes as attr
from mailscope._safety import internal_error
from mailscope.config import settings
from mailscope.delivery import events as ev
from mailscope.delivery import tracking
from mailscope.delivery import verify
from mailscope.instrumentation.common import send as common
from mailscope.metrics import delivery_instruments
from mailscope.version import __version__

logger = logging.getLogger("mailscope")

PROVIDERS = ("mailgun", "sendgrid", "postmark", "ses")
MAX_BODY_BYTES = 4 * 1024 * 1024
WINDOW_S = 300.0  # signed times further than this from now are refused
REPLAY_IDS_MAX = 50_000
MAX_DIAGNOSTIC_CHARS = 1000
DELIVERY_ERROR_TYPE = "smtplib.SMTPRecipientsRefused"
# the latency histogram measures delivery: the receiving server's verdict, not when a person
# opened, clicked or complained (hours later; those spans still carry their latency)
DELIVERY_OUTCOMES = (attr.DELIVERY_DELIVERED, *attr.DELIVERY_FAILURES)

_STATUS_FOR = {
    verify.UNSIGNED: 401, verify.BAD_SIGNATURE: 401, verify.STALE: 401, verify.REPLAYED: 401,
    verify.NOT_CONFIGURED: 401, verify.MALFORMED: 400, verify.TOO_LARGE: 413,
}


@dataclass
class Answer:
    status: int
    text: str

    @property
    def body(self) -> bytes:
        return self.text.encode("utf-8")


class ReplayGuard:
    """The last `limit` ids handled (hashed: 16 bytes each), oldest forgotten first."""

    def __init__(self, limit: int = REPLAY_IDS_MAX):
        self.limit = limit
        self._ids: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(value: str) -> bytes:
        return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()[:16]

    def claim(self, values) -> bool:
        """Remember `values`, unless one of them is remembered already (then False, nothing changes):
        one check-and-mark, so two copies of a request arriving together cannot both pass."""
        keys = [self._key(v) for v in values]
        with self._lock:
            if any(k in self._ids for k in keys):
                return False
            for key in keys:
                self._ids[key] = None
            while len(self._ids) > self.limit:
                self._ids.popitem(last=False)
            return True

    def release(self, values) -> None:
        """Forget `values` again (their request failed: the provider's retry must pass)."""
        keys = [self._key(v) for v in values]
        with self._lock:
            for key in keys:
                self._ids.pop(key, None)

    def __len__(self) -> int:
        return len(self._ids)


_REPLY = re.compile(r"^\s*([245]\d\d)(?:[\s-]+|$)")


def reply_of(diagnostic: str | None) -> dict:
    """smtp.response.code / enhanced_status of a diagnostic such as `550 5.1.1 ...` or `5.1.1 ...`."""
    if not diagnostic:
        return {}
    found = _REPLY.match(diagnostic)
    if found is not None:
        return common.reply_attributes(int(found.group(1)), diagnostic[found.end():])
    status = common.enhanced_status(diagnostic)
    return {attr.SMTP_ENHANCED_STATUS: status} if status else {}


def _lower_headers(headers) -> dict:
    try:
        return {str(k).lower(): str(v) for k, v in dict(headers).items()}
    except Exception:
        return {}


class Receiver:
    """Verifies and records provider events. Keys come from `config` (default: the environment)."""

    def __init__(self, config=None, tracer_provider=None, meter_provider=None, fetch_certificate=None,
                 confirm_subscription=None, clock=time.time):
        config = config or settings()
        self.clock = clock
        self.tracer = trace.get_tracer("mailscope.delivery", __version__, tracer_provider)
        self.metrics = delivery_instruments(meter_provider)
        self.replays = ReplayGuard()
        self.mailgun_key = config.webhook_mailgun_signing_key or None
        self.postmark_credentials = config.webhook_postmark_credentials or None
        self.sendgrid_key = None
        if config.webhook_sendgrid_public_key:
            try:
                self.sendgrid_key = verify.load_sendgrid_key(config.webhook_sendgrid_public_key)
            except Exception:
                logger.warning("mailscope: MAILSCOPE_WEBHOOK_SENDGRID_PUBLIC_KEY is not an EC public key; "
                               "SendGrid events are rejected")
        self.ses_topics = tuple(config.webhook_ses_topic_arns or ())
        self.certificates = verify.CertificateSource(config.webhook_ses_cert_origins, fetch_certificate)
        self.confirm_subscription = confirm_subscription or _confirm_subscription

    # --- the protocol -------------------------------------------------------------------------
    def handle(self, path, method, headers, body) -> Answer:
        provider = None
        try:
            provider = str(path or "").rstrip("/").rsplit("/", 1)[-1].lower()
            if provider not in PROVIDERS:
                return Answer(404, "not found")
            if str(method).upper() != "POST":
                return Answer(405, "POST only")
            return self._handle(provider, _lower_headers(headers), body)
        except Exception:
            internal_error("delivery webhook")
            return Answer(500, "internal error")

    def reject(self, provider: str, reason: str) -> Answer:
        try:
            self.metrics.rejected.add(1, {attr.PROVIDER: provider, attr.LABEL_REASON: reason})
        except Exception:
            internal_error("delivery rejected metric")
        return Answer(_STATUS_FOR[reason], reason)

    def _handle(self, provider, headers, body) -> Answer:
        if body is None or len(body) > MAX_BODY_BYTES:
            return self.reject(provider, verify.TOO_LARGE)
        body = bytes(body)
        result = getattr(self, f"_{provider}")(headers, body)
        if isinstance(result, str):
            return self.reject(provider, result)
        events, keys = result
        keys = [f"{provider}:{k}" for k in keys if k] + [f"{provider}:event:{e.event_id}" for e in events if e.event_id]
        if keys and not self.replays.claim(keys):
            return self.reject(provider, verify.REPLAYED)
        handled = 0
        try:
            for event in events:
                if event.status is not None:
                    self.record(event)
                    handled += 1
        except BaseException:
            self.replays.release(keys)
            raise
        return Answer(200, f"ok {handled}")

    def _fresh(self, signed_at) -> bool:
        return signed_at is not None and abs(self.clock() - signed_at) <= WINDOW_S

    @staticmethod
    def _json(body):
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None

    # --- providers: (events, request keys) or a rejection reason ----------------------------------
    def _sendgrid(self, headers, body):
        if self.sendgrid_key is None:
            return verify.NOT_CONFIGURED
        reason = verify.sendgrid(self.sendgrid_key, headers, body)
        if reason:
            return reason
        if not self._fresh(ev.parse_time(headers.get(verify.SENDGRID_TIMESTAMP))):
            return verify.STALE
        try:
            events = ev.sendgrid(self._json(body))
        except ev.Malformed:
            return verify.MALFORMED
        return events, ["sig:" + headers[verify.SENDGRID_SIGNATURE]]

    def _mailgun(self, headers, body):
        if self.mailgun_key is None:
            return verify.NOT_CONFIGURED
        document = self._json(body)
        if not isinstance(document, dict):
            return verify.MALFORMED
        signature = document.get("signature")
        reason = verify.mailgun(self.mailgun_key, signature)
        if reason:
            return reason
        if not self._fresh(ev.parse_time(signature.get("timestamp"))):
            return verify.STALE
        try:
            events = ev.mailgun(document)
        except ev.Malformed:
            return verify.MALFORMED
        return events, ["token:" + str(signature.get("token"))]

    def _postmark(self, headers, body):
        if self.postmark_credentials is None:
            return verify.NOT_CONFIGURED
        reason = verify.postmark(self.postmark_credentials, headers.get("authorization"))
        if reason:
            return reason
        try:
            events = ev.postmark(self._json(body))
        except ev.Malformed:
            return verify.MALFORMED
        return events, []

    def _ses(self, headers, body):
        if not self.ses_topics:
            return verify.NOT_CONFIGURED
        message = self._json(body)
        if not isinstance(message, dict) or not isinstance(message.get("Type"), str):
            return verify.MALFORMED
        import fnmatch

        topic = message.get("TopicArn")
        if not isinstance(topic, str) or not any(fnmatch.fnmatchcase(topic, glob) for glob in self.ses_topics):
            return verify.BAD_SIGNATURE  # genuine or not, not a topic this receiver serves
        reason = verify.sns(self.certificates, message)
        if reason:
            return reason
        if not self._fresh(ev.parse_time(message.get("Timestamp"))):
            return verify.STALE
        message_id = str(message.get("MessageId") or "")
        if message["Type"] == "SubscriptionConfirmation":
            url = message.get("SubscribeURL")
            if not self.certificates.origin_allowed(url):
                return verify.BAD_SIGNATURE  # SNS's own URLs are at the origins its certificates come from
            if not self.confirm_subscription(url):
                raise RuntimeError("SNS subscription not confirmed")  # 500: SNS sends it again
            return [], ["sns:" + message_id]
        if message["Type"] != "Notification":
            return [], ["sns:" + message_id]
        inner = message.get("Message")
        try:
            events = ev.ses(json.loads(inner) if isinstance(inner, str) else None, message_id)
        except (ValueError, ev.Malformed):
            return verify.MALFORMED
        return events, ["sns:" + message_id]

    # --- spans and metrics --------------------------------------------------------------------
    def record(self, event: ev.Event) -> None:
        """One `email.delivery` span and the metrics of one event."""
        now = self.clock()
        parsed = tracking.parse(event.tracking)
        parent = tracking.parent_context(parsed[0]) if parsed else otel_context.Context()
        sent_at = parsed[1] if parsed else None
        at = event.timestamp if event.timestamp is not None and abs(now - event.timestamp) < 30 * 86400 else now
        values = {attr.OPERATION: attr.OP_DELIVERY, attr.PROVIDER: event.provider,
                  attr.DELIVERY_STATUS: event.status}
        domains = common.recipient_domains(event.recipients)
        if domains:
            values[attr.RECIPIENTS_DOMAINS] = domains
        latency = None
        if sent_at is not None:
            latency = at - sent_at
            if latency < 0:  # clocks disagree: a little is noise, a lot is not a latency
                latency = 0.0 if latency > -WINDOW_S else None
            if latency is not None:
                values[attr.DELIVERY_LATENCY] = latency
        id_hash = common.message_id_hash(event.message_id)
        if id_hash:
            values[attr.MESSAGE_ID_HASH] = id_hash
        failed = event.status in attr.DELIVERY_FAILURES
        text = None
        if failed:
            text = common.mask_addresses((event.diagnostic or event.status)[:MAX_DIAGNOSTIC_CHARS])
            values.update(reply_of(text))
            values[attr.ERROR_TYPE] = DELIVERY_ERROR_TYPE
        current = trace.get_current_span().get_span_context()
        links = [Link(current)] if current.is_valid else None
        moment = int(at * 1e9)
        span = self.tracer.start_span(attr.SPAN_DELIVERY, context=parent, kind=SpanKind.INTERNAL,
                                      attributes=values, links=links, start_time=moment)
        if failed:
            span.set_status(Status(StatusCode.ERROR, text))
        span.end(end_time=moment)
        self._count(event, values, text, latency)

    def _count(self, event, values, text, latency) -> None:
        try:
            labels = {attr.PROVIDER: event.provider, attr.DELIVERY_STATUS: event.status}
            if text is not None:
                labels[attr.ERROR_CATEGORY] = category_of(text, values)
            self.metrics.events.add(1, labels)
            if latency is not None and event.status in DELIVERY_OUTCOMES:
                self.metrics.latency.record(latency, {attr.PROVIDER: event.provider})
        except Exception:
            internal_error("delivery metrics")


def category_of(text: str, values: dict) -> str:
    """The category the errors stage gives a delivery span with this text and these attributes."""
    from mailscope.processors.error_categories import UNKNOWN
    from mailscope.processors.errors import ErrorsStage, classify

    result = classify(text, DELIVERY_ERROR_TYPE)
    if result.category != UNKNOWN:
        return result.category
    return ErrorsStage._from_span_codes(SimpleNamespace(attributes=values), result.category, result.retryable)[0]


def _confirm_subscription(url: str) -> bool:
    """GET the SubscribeURL of an SNS SubscriptionConfirmation (its origin is allow-listed)."""
    with urllib.request.urlopen(url, timeout=verify.CERT_TIMEOUT_S) as response:  # noqa: S310
        response.read(verify.MAX_CERT_BYTES)
        return 200 <= response.status < 300
