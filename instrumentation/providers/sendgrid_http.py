"""SendGrid's v3 Mail Send called over requests or httpx (django-anymail, hand-written clients).

The `sendgrid` package itself is traced by `providers.sendgrid` (it sends
through urllib, not through requests or httpx); this module reads the same
documented shapes for the URL-matched path: the request's personalizations
(`providers.sendgrid.describe_request`), the 202 answer (no body; the message id
is the `X-Message-Id` response header, which this path does not read) and the
error answer `{"errors": [{"message", "field", "help"}]}`.
"""

from __future__ import annotations

from mailscope.instrumentation.providers import sendgrid
from mailscope.instrumentation.providers.common import Outcome, Request
from mailscope.instrumentation.providers.jsonapi import document, failed

PROVIDER = sendgrid.PROVIDER


def describe_request(body, content_type=None) -> Request:
    parsed = document(body)
    return sendgrid.describe_request(parsed) if isinstance(parsed, dict) else Request()


def error_text(answer) -> str | None:
    errors = answer.get("errors") if isinstance(answer, dict) else None
    messages = [str(e["message"]) for e in errors or () if isinstance(e, dict) and e.get("message")]
    return "; ".join(messages) or None


def describe_result(status: int, body, request: Request | None) -> Outcome:
    if status >= 400:
        return failed(status, error_text(document(body)))
    return Outcome(status_code=status)
