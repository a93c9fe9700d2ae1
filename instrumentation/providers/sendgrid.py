"""SendGrid (the `sendgrid` package): one `email.send` span per v3 Mail Send call.

The SDK sends through python_http_client, whose `Client._make_request(opener,
request, timeout)` opens one urllib request. mailscope wraps that method and
traces the POSTs to `/v3/mail/send` (any host: the SDK's `host` can point
elsewhere), so both `SendGridAPIClient.send(message)` and the older
`sg.client.mail.send.post(request_body=...)` are covered. Everything the span
covers happens inside that call, so an HTTP client instrumentation below it
(urllib) would produce a child span.

Attributes: recipient count and domains (the to/cc/bcc addresses of every
personalization), `messaging.batch.message_count` (personalizations, each one
message, when more than one), mapped headers (the request's top-level
`headers`), `http.response.status_code`, and the `X-Message-Id` response header
hashed like a Message-ID. SendGrid answers errors with `{"errors": [{"message":
...}]}`; python_http_client raises them as `HTTPError` subclasses whose str() is
only `HTTP Error 400: Bad Request`, so the exception event's message is
`HTTP <status> <reason>: <errors[].message joined by "; ">`, the text the errors
stage classifies (the app still receives the original exception object).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit


from mailscope._safety import internal_error
from mailscope.instrumentation.common import wrapper_layers
from mailscope.instrumentation.providers import tracking as delivery_tracking
from mailscope.instrumentation.providers.common import Outcome, Request, server_of_url

PROVIDER = "sendgrid"
SEND_PATH_SUFFIX = "/v3/mail/send"
MESSAGE_ID_HEADER = "X-Message-Id"
RECIPIENT_FIELDS = ("to", "cc", "bcc")


def is_mail_send(request) -> bool:
    """A urllib Request for SendGrid's Mail Send endpoint."""
    try:
        if request.get_method() != "POST":
            return False
        return urlsplit(request.full_url).path.rstrip("/").endswith(SEND_PATH_SUFFIX)
    except Exception:
        return False


def _emails(items) -> list:
    out = []
    if isinstance(items, dict):
        items = [items]
    if isinstance(items, (list, tuple)):
        for item in items:
            email = item.get("email") if isinstance(item, dict) else item
            if isinstance(email, str) and email:
                out.append(email)
    return out


def describe_request(body) -> Request:
    """The Request of a Mail Send body (bytes of JSON, or the dict itself)."""
    if isinstance(body, (bytes, bytearray, str)):
        body = json.loads(body)
    request = Request()
    if not isinstance(body, dict):
        return request
    personalizations = body.get("personalizations")
    if isinstance(personalizations, list):
        recipients = []
        for item in personalizations:
            if isinstance(item, dict):
                for name in RECIPIENT_FIELDS:
                    recipients.extend(_emails(item.get(name)))
        request.recipients = recipients
        if len(personalizations) > 1:
            request.batch = len(personalizations)
    headers = body.get("headers")
    if isinstance(headers, dict):
        request.headers = {str(k).lower(): str(v) for k, v in headers.items() if v is not None}
    return request


def error_text(exc) -> str | None:
    """`HTTP <status> <reason>: <errors[].message; ...>` of a python_http_client HTTPError."""
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    if status is None or not isinstance(body, (bytes, bytearray, str)):
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    errors = document.get("errors") if isinstance(document, dict) else None
    messages = [str(e["message"]) for e in errors or () if isinstance(e, dict) and e.get("message")]
    if not messages:
        return None
    reason = getattr(exc, "reason", None)
    head = f"HTTP {status} {reason}" if reason else f"HTTP {status}"
    return f"{head}: " + "; ".join(messages)


class SendGridProbe(wrapper_layers.ImportProbe):
    """Installs the python_http_client wrapper when that module is imported."""

    module_name = "python_http_client.client"
    label = "sendgrid"

    def install(self, module) -> None:
        self.patch(module.Client, "_make_request", self._make_request)

    def _make_request(self, wrapped, instance, args, kwargs):
        request = args[1] if len(args) > 1 else kwargs.get("request")
        if not self.active or not is_mail_send(request):
            return wrapped(*args, **kwargs)
        telemetry = self.telemetry
        send = telemetry.start(PROVIDER, server_of_url(getattr(request, "full_url", None)))
        if send is not None and delivery_tracking.enabled():
            delivery_tracking.guarded(delivery_tracking.sendgrid_request, request, send)
        try:
            telemetry.describe(send, describe_request(request.data))
        except Exception:
            internal_error("sendgrid request")
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            text, status = None, None
            try:
                status = getattr(exc, "status_code", None)
                text = error_text(exc)
            except Exception:
                internal_error("sendgrid error")
            telemetry.end_error(send, exc, text=text,
                                outcome=Outcome(status_code=status if isinstance(status, int) else None))
            raise
        outcome = None
        try:
            outcome = Outcome(status_code=response.getcode())
            message_id = response.headers.get(MESSAGE_ID_HEADER)
            if message_id:
                outcome.message_ids.append(message_id)
        except Exception:
            internal_error("sendgrid response")
        telemetry.end_ok(send, outcome)
        return response
