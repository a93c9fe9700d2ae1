"""Resend: `POST /emails` (one message) and `POST /emails/batch` (a list of them).

Request (JSON): `to` (a string or a list of up to 50), `cc`, `bcc` (the same),
`headers` as an object. Answer: 200 `{"id": "..."}`, or for a batch `{"data":
[{"id"}, ...]}`; an error is `{"statusCode", "message", "name"}` (for example
422 `validation_error`, 429 `rate_limit_exceeded`), classified as
`HTTP <status>: <message> (<name>)`.
"""

from __future__ import annotations

from mailscope.instrumentation.providers.common import Outcome, Request
from mailscope.instrumentation.providers.jsonapi import addresses, coded, document, failed, string_headers

PROVIDER = "resend"
RECIPIENT_FIELDS = ("to", "cc", "bcc")


def describe_request(body, content_type=None) -> Request:
    payload = document(body)
    batch = isinstance(payload, list)
    messages = [m for m in (payload if batch else [payload]) if isinstance(m, dict)]
    request = Request(recipients=[])
    for message in messages:
        recipients = [a for name in RECIPIENT_FIELDS for a in addresses(message.get(name))]
        request.entries.append(recipients)
        request.recipients.extend(recipients)
    if batch:
        request.batch = len(messages)
    if messages:
        request.headers = string_headers(messages[0].get("headers"))
    return request


def describe_result(status: int, body, request: Request | None) -> Outcome:
    answer = document(body)
    answer = answer if isinstance(answer, dict) else {}
    if status >= 400:
        return failed(status, coded(answer.get("message"), answer.get("name")))
    outcome = Outcome(status_code=status)
    items = answer.get("data") if isinstance(answer.get("data"), list) else [answer]
    outcome.message_ids.extend(str(i["id"]) for i in items if isinstance(i, dict) and i.get("id"))
    return outcome
