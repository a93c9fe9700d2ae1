"""Mailjet Send API v3.1: `POST /v3.1/send`.

Request (JSON): `{"Messages": [{"To": [{"Email", "Name"}], "Cc": [...], "Bcc":
[...], "Headers": {...}, ...}], "Globals": {...}}`; `Globals` may carry `Cc`/`Bcc`
(and `Headers`) that apply to every message. More than one message sets
`messaging.batch.message_count`.

Answer: `{"Messages": [{"Status": "success", "To": [{"Email", "MessageUUID",
"MessageID", ...}]} | {"Status": "error", "Errors": [{"ErrorIdentifier",
"ErrorCode", "StatusCode", "ErrorMessage", "ErrorRelatedTo"}]}]}`, 200 when every
message succeeded and 400 when any failed (the others are still sent): the
failed messages refuse their recipients, and the call is a failure only when no
message went out. A request-level error (401 bad key, ...) is one object
`{"ErrorIdentifier", "StatusCode", "ErrorMessage"}`. The text classified is
`HTTP <status>: <ErrorMessage> (<ErrorCode>)`.
"""

from __future__ import annotations

from mailscope.instrumentation.providers.common import Outcome, Request
from mailscope.instrumentation.providers.jsonapi import addresses, coded, document, failed, string_headers

PROVIDER = "mailjet"
RECIPIENT_FIELDS = ("To", "Cc", "Bcc")


def _messages(answer_or_request) -> list:
    messages = answer_or_request.get("Messages") if isinstance(answer_or_request, dict) else None
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def describe_request(body, content_type=None) -> Request:
    payload = document(body)
    request = Request(recipients=[])
    messages = _messages(payload)
    shared = payload.get("Globals") if isinstance(payload, dict) else None
    shared = shared if isinstance(shared, dict) else {}
    for message in messages:
        recipients = [a for name in RECIPIENT_FIELDS for a in addresses(message.get(name) or shared.get(name), "Email")]
        request.entries.append(recipients)
        request.recipients.extend(recipients)
    if len(messages) > 1:
        request.batch = len(messages)
    request.headers = string_headers(shared.get("Headers"))
    if messages:
        request.headers.update(string_headers(messages[0].get("Headers")))
    return request


def _error_text(error: dict) -> str | None:
    return coded(error.get("ErrorMessage"), error.get("ErrorCode"))


def describe_result(status: int, body, request: Request | None) -> Outcome:
    answer = document(body)
    results = _messages(answer)
    if not results:
        details = answer if isinstance(answer, dict) else {}
        if status >= 400:
            return failed(status, _error_text(details))
        return Outcome(status_code=status)
    outcome = Outcome(status_code=status)
    entries = request.entries if request is not None else []
    first_failure = None
    for index, result in enumerate(results):
        if result.get("Status") == "success":
            for to in result.get("To") or ():
                if isinstance(to, dict) and to.get("MessageID") is not None:
                    outcome.message_ids.append(str(to["MessageID"]))
            continue
        errors = [e for e in result.get("Errors") or () if isinstance(e, dict)]
        text = f"HTTP {status}: " + ("; ".join(filter(None, map(_error_text, errors))) or "error")
        if first_failure is None:
            first_failure = (str(status) if status >= 400 else "error", text)
        if index < len(entries):
            outcome.refusals.extend((a, None, text) for a in entries[index])
    if first_failure is not None and not outcome.message_ids:
        outcome.failure = first_failure
    return outcome
