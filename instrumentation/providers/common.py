"""The `email.send` span of one HTTP email-provider call (SES, SendGrid, Mailgun, Postmark).

The provider modules only translate their API's request and response shapes into
the two plain records below; every decision about the span lives here, and the
attribute values come from `send_common`, the helpers the SMTP instrumentation
uses too. So a send span looks the same whichever provider sent the message:

- at the start: `mailscope.operation=send`, `email.provider`, `server.address`
  and `server.port` of the API endpoint; the span is current while the call
  runs, so the HTTP or AWS span an upstream instrumentation makes is its child;
- `Request` (what the app asked for): recipient count and domains, the number of
  messages of a batch call (`messaging.batch.message_count`), the message size
  when the app hands over a whole MIME message, mapped headers, and the
  Message-ID hash when the app set a Message-ID itself;
- `Outcome` (what the provider answered): `http.response.status_code`, the
  provider's message id hashed like a Message-ID (it replaces the app's), the
  recipients of batch entries the provider refused (count and one
  `email.recipient.refused` event each, with the domain only), and
  `mailscope.recipients` by provider and outcome;
- failures: ERROR status and `error.type`. An exception the app receives is
  recorded as the exception event, optionally with a better text than its
  `str()` (the provider's error message from the response body). A provider
  answer that is a failure but raises nothing (an HTTP 4xx the client returns,
  a bulk call whose entries all failed) carries its text as the status
  description. Either text is what the errors stage classifies. Provider texts
  often contain addresses: they are masked here as MAILSCOPE_REDACT says, and
  the redaction stage, last in the chain, scrubs every exported string again.

A request the whole of which the provider rejected records no recipients metric
(as an SMTP message whose DATA is rejected); refused batch entries, and
Postmark's "inactive recipient" rejection, count as refused recipients.

Nothing here raises into the app: every method catches its own errors, and a
span that was started is always ended.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import getaddresses
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from mailscope import attributes as attr
from mailscope._safety import internal_error
from mailscope.instrumentation.common import send as common

MAX_ERROR_TEXT = 1000  # characters of a provider's error text kept for classification

DEFAULT_PORTS = {"https": 443, "http": 80}


def server_of_url(url) -> tuple[str | None, int | None]:
    """(host, port) of an endpoint URL; the port defaults by scheme."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
        return host, port
    except (ValueError, TypeError):
        return None, None


_NEEDS_PARSER = re.compile(r'[<>"():;\\]')


def split_addresses(values) -> list:
    """Addresses of address-list header values (`a@x, Name <b@y>`), as `email.utils.getaddresses`
    reads them. Plain comma-separated addresses (the usual API input) skip that parser, which
    costs tens of microseconds a call."""
    out: list = []
    for value in values:
        if _NEEDS_PARSER.search(value):
            out.extend(address for _, address in getaddresses([value]) if address)
        else:
            out.extend(part for part in (p.strip() for p in value.split(",")) if part)
    return out


@dataclass
class Request:
    """What the app asked the provider to send, as far as the request shows it."""

    recipients: list | None = None  # address strings; None: unknown
    batch: int | None = None  # messages in a batch call (set for batch calls only)
    size: int | None = None  # bytes of a whole MIME message the app handed over
    headers: dict = field(default_factory=dict)  # lower-cased name -> value (send_common's shape)
    entries: list = field(default_factory=list)  # recipients of each message of a batch, in request order


@dataclass
class Outcome:
    """What the provider answered."""

    status_code: int | None = None
    message_ids: list = field(default_factory=list)  # provider message ids (one per accepted message)
    refusals: list = field(default_factory=list)  # (address, None, text) per refused recipient
    failure: tuple | None = None  # (error type, text): the answer is a failure although nothing raised


class Send:
    """One provider call in progress."""

    __slots__ = ("provider", "span", "token", "recipients")

    def __init__(self, provider, span, token):
        self.provider = provider
        self.span = span
        self.token = token
        self.recipients = None


class ProviderTelemetry:
    """Opens and closes provider send spans. Every method swallows its own errors."""

    def __init__(self, tracer, recipients_metric: common.RecipientsMetric):
        self.tracer = tracer
        self.recipients_metric = recipients_metric

    def start(self, provider: str, server=(None, None)) -> Send | None:
        """Open the send span and make it current (end it with one of the `end_*` methods,
        on the same thread or task)."""
        span = None
        try:
            values = {attr.OPERATION: attr.OP_SEND, attr.PROVIDER: provider}
            host, port = server
            if host:
                values[attr.SERVER_ADDRESS] = str(host)
            if isinstance(port, int) and port > 0:
                values[attr.SERVER_PORT] = port
            span = self.tracer.start_span(attr.SPAN_SEND, kind=SpanKind.CLIENT, attributes=values)
            token = otel_context.attach(trace.set_span_in_context(span))
            return Send(provider, span, token)
        except Exception:
            internal_error(f"{provider} send start")
            if span is not None:
                try:
                    span.end()
                except Exception:
                    pass
            return None

    def describe(self, send: Send, request: Request | None) -> None:
        """Attributes from the request (may be called before or after the call)."""
        if send is None or request is None:
            return
        try:
            values = common.message_attributes(request.headers) if request.headers else {}
            if request.recipients is not None:
                send.recipients = request.recipients
                values.update(common.envelope_attributes(send.provider, request.recipients))
            if request.batch is not None:
                values[attr.MESSAGING_BATCH_MESSAGE_COUNT] = request.batch
            if request.size is not None:
                values[attr.MESSAGE_BYTES] = request.size
            if values:
                send.span.set_attributes(values)
        except Exception:
            internal_error(f"{send.provider} send request")

    def _outcome_values(self, send: Send, outcome: Outcome, ok: bool) -> int:
        """Status code, message id hash and refusals on the span; returns the refused count.

        `email.recipients.refused` is written on a successful answer (0 included,
        as for SMTP) and on a failed one only when recipients were refused."""
        span = send.span
        values = {}
        if outcome.status_code is not None:
            values[attr.HTTP_RESPONSE_STATUS_CODE] = int(outcome.status_code)
        if len(outcome.message_ids) == 1:
            id_hash = common.message_id_hash(outcome.message_ids[0])
            if id_hash:
                values[attr.MESSAGE_ID_HASH] = id_hash
        refused = common.add_refusal_events(span, outcome.refusals) if outcome.refusals else 0
        if refused or (ok and send.recipients is not None):
            values[attr.RECIPIENTS_REFUSED] = refused
        span.set_attributes(values)
        return refused

    def end_ok(self, send: Send | None, outcome: Outcome | None) -> None:
        """The call returned; `outcome` describes the answer."""
        if send is None:
            return
        try:
            outcome = outcome or Outcome()
            refused = self._outcome_values(send, outcome, ok=outcome.failure is None)
            if outcome.failure is not None:
                error_name, text = outcome.failure
                self._fail_quietly(send.span, error_name, text)
                accepted = 0
            else:
                accepted = max(0, len(send.recipients) - refused) if send.recipients is not None else 0
            self.recipients_metric.record(send.provider, accepted=accepted, refused=refused)
        except Exception:
            internal_error(f"{send.provider} send result")
        self._close(send)

    def end_error(self, send: Send | None, exc: BaseException, error_name: str | None = None,
                  text: str | None = None, outcome: Outcome | None = None) -> None:
        """The call raised `exc` (the caller re-raises the same object).

        `error_name` replaces the exception class as `error.type` (an AWS error
        code), `text` its str() as the exception message (a provider's error body).
        """
        if send is None:
            return
        try:
            span = send.span
            refused = self._outcome_values(send, outcome, ok=False) if outcome is not None else 0
            if refused:
                self.recipients_metric.record(send.provider, refused=refused)
            span.set_attribute(attr.ERROR_TYPE, error_name or common.error_type(exc))
            extra = None
            if text:
                extra = {attr.EXCEPTION_MESSAGE: common.mask_addresses(text[:MAX_ERROR_TEXT])}
            span.record_exception(exc, attributes=extra)  # the redaction stage scrubs it again
            span.set_status(Status(StatusCode.ERROR))
        except Exception:
            internal_error(f"{send.provider} send error")
        self._close(send)

    @staticmethod
    def _fail_quietly(span, error_name: str, text: str | None) -> None:
        span.set_attribute(attr.ERROR_TYPE, error_name)
        description = common.mask_addresses(text[:MAX_ERROR_TEXT]) if text else None
        span.set_status(Status(StatusCode.ERROR, description))

    def _close(self, send: Send) -> None:
        token, send.token = send.token, None
        try:
            if token is not None:
                otel_context.detach(token)
        except Exception:
            internal_error(f"{send.provider} send context")
        try:
            send.span.end()
        except Exception:
            internal_error(f"{send.provider} send end")
