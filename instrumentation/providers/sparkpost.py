"""SparkPost Transmissions: `POST /api/v1/transmissions` (api.sparkpost.com, api.eu.sparkpost.com).

Request (JSON): `recipients` is a list of `{"address": {"email", "name",
"header_to"}}` (or `{"address": "a@x"}`); CC and BCC copies are recipients too
(with `header_to`), so every entry counts. A stored list (`{"list_id": ...}`)
does not show its recipients: the count stays unknown. `content.headers` feeds
the header mapping.

Answer: 200 `{"results": {"total_rejected_recipients", "total_accepted_recipients",
"id"}}`; the transmission `id` is hashed as the message id. Rejected recipients
are refused without a domain (the answer only counts them), and a transmission
whose every recipient was rejected is a failure. Errors: `{"errors": [{"message",
"description", "code"}]}`, classified as `HTTP <status>: <message>: <description>
(code <code>)`.
"""

from __future__ import annotations

from mailscope.instrumentation.providers.common import Outcome, Request
from mailscope.instrumentation.providers.jsonapi import addresses, document, failed, joined, string_headers

PROVIDER = "sparkpost"
MAX_REFUSALS = 10_000


def describe_request(body, content_type=None) -> Request:
    payload = document(body)
    if not isinstance(payload, dict):
        return Request()
    request = Request()
    recipients = payload.get("recipients")
    if isinstance(recipients, list):
        request.recipients = [a for item in recipients if isinstance(item, dict)
                              for a in addresses(item.get("address"))]
    content = payload.get("content")
    if isinstance(content, dict):
        request.headers = string_headers(content.get("headers"))
    return request


def error_text(answer) -> str | None:
    errors = answer.get("errors") if isinstance(answer, dict) else None
    texts = []
    for error in errors if isinstance(errors, list) else ():
        if isinstance(error, dict):
            text = joined(error.get("message"), error.get("description"))
            if text and error.get("code"):
                text = f"{text} (code {error['code']})"
            if text:
                texts.append(text)
    return "; ".join(texts) or None


def describe_result(status: int, body, request: Request | None) -> Outcome:
    answer = document(body)
    if status >= 400:
        return failed(status, error_text(answer))
    outcome = Outcome(status_code=status)
    results = answer.get("results") if isinstance(answer, dict) else None
    if isinstance(results, dict):
        if results.get("id"):
            outcome.message_ids.append(str(results["id"]))
        accepted, rejected = results.get("total_accepted_recipients"), results.get("total_rejected_recipients")
        if isinstance(rejected, int) and rejected > 0:
            total = rejected + accepted if isinstance(accepted, int) else rejected
            text = f"HTTP {status}: {rejected} of {total} recipients rejected"
            # the answer does not say which: refusals without an address (no domain on their events)
            outcome.refusals.extend(("", None, text) for _ in range(min(rejected, MAX_REFUSALS)))
            if accepted == 0:
                outcome.failure = ("rejected", text)
    return outcome
