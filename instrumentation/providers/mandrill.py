"""Mandrill (Mailchimp Transactional): `POST /api/1.0/messages/send.json`, `send-template.json`,
`send-raw.json` on mandrillapp.com.

Request (JSON): `{"key", "message": {"to": [{"email", "name", "type": "to|cc|bcc"}],
"headers": {...}, ...}}`; `send-raw` takes `{"raw_message": "<MIME>", "to": ["a@x",
...]}` (without `to`, the message's own headers decide: the count stays unknown).
The API key travels in the body and is never read into telemetry.

Answer: 200 with one result per recipient `[{"email", "status": "sent|queued|
scheduled|rejected|invalid", "reject_reason", "_id"}]`: rejected and invalid
recipients are refused (`recipient <status>: <reject_reason>`), and the call is a failure
when every recipient was. Errors come as HTTP 500 with `{"status": "error",
"code", "name": "Invalid_Key", "message"}`: `error.type` is the name and the text
classified is `Mandrill <name>: <message>` (the 500 is not a server fault).
"""

from __future__ import annotations

from mailscope.instrumentation.common import send as common
from mailscope.instrumentation.providers.common import Outcome, Request
from mailscope.instrumentation.providers.jsonapi import addresses, document, failed, string_headers

PROVIDER = "mandrill"
REFUSED_STATUSES = ("rejected", "invalid")


def describe_request(body, content_type=None) -> Request:
    payload = document(body)
    if not isinstance(payload, dict):
        return Request()
    request = Request()
    message = payload.get("message")
    if isinstance(message, dict):
        request.recipients = addresses(message.get("to"))
        request.headers = string_headers(message.get("headers"))
    elif isinstance(payload.get("raw_message"), str):
        raw = payload["raw_message"]
        request.size = len(raw.encode("utf-8", "surrogatepass"))
        request.headers = common.headers_from_raw(raw)
        if payload.get("to") is not None:
            request.recipients = addresses(payload.get("to"))
    return request


def describe_result(status: int, body, request: Request | None) -> Outcome:
    answer = document(body)
    if isinstance(answer, dict) and answer.get("status") == "error":
        name = str(answer.get("name") or status)
        outcome = failed(status, None, name)
        outcome.failure = (name, f"Mandrill {name}: {answer.get('message') or 'error'}")
        return outcome
    if status >= 400:
        return failed(status, None)
    outcome = Outcome(status_code=status)
    results = [r for r in answer if isinstance(r, dict)] if isinstance(answer, list) else []
    for result in results:
        state = result.get("status")
        if state in REFUSED_STATUSES:
            reason = result.get("reject_reason")
            text = f"recipient {state}: {reason}" if reason else f"recipient {state}"
            outcome.refusals.append((str(result.get("email") or ""), None, text))
        elif result.get("_id"):
            outcome.message_ids.append(str(result["_id"]))
    if results and len(outcome.refusals) == len(results):
        outcome.failure = ("rejected", "Mandrill: " + "; ".join(sorted({r[2] for r in outcome.refusals})))
    return outcome
