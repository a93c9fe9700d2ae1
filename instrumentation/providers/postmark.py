"""Postmark's send API, as the request and response bodies show it.

Endpoints: `POST /email` and `/email/withTemplate` take one message (JSON
object); `/email/batch` takes an array of them and `/email/batchWithTemplates`
an object `{"Messages": [...]}`. A message names its recipients in `To`, `Cc`
and `Bcc`, each a comma-separated string of addresses, and may carry `Headers`
(`[{"Name": ..., "Value": ...}]`).

The answer to one message is `{"To": ..., "SubmittedAt": ..., "MessageID":
"<uuid>", "ErrorCode": 0, "Message": "OK"}`; a rejected one gets an error
status (422 mostly, 401 for a bad token) and `{"ErrorCode": n, "Message":
"..."}`. A batch is answered 200 with one such object per message, each with
its own ErrorCode.

- recipients: every address of every message; batch calls set
  `messaging.batch.message_count`;
- per-message failures of a batch refuse that message's recipients (ErrorCode
  406, "inactive recipient", only those its Message names as inactive); a single
  send rejected with 406 refuses those recipients too;
- the text classified is `HTTP <status>: <Message> (ErrorCode <n>)`.
"""

from __future__ import annotations

import json

from mailscope.instrumentation.providers.common import Outcome, Request, split_addresses

PROVIDER = "postmark"
RECIPIENT_FIELDS = ("To", "Cc", "Bcc")
INACTIVE_RECIPIENT = 406  # Postmark ErrorCode: the recipient is marked inactive (bounced, complained, suppressed)


def _document(body):
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8", "replace")
    if not isinstance(body, str) or not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def messages_of(document) -> tuple[list, bool]:
    """(messages, is_batch) of a request document."""
    if isinstance(document, list):
        return [m for m in document if isinstance(m, dict)], True
    if isinstance(document, dict):
        batch = document.get("Messages")
        if isinstance(batch, list):
            return [m for m in batch if isinstance(m, dict)], True
        return [document], False
    return [], False


def message_recipients(message: dict) -> list:
    return split_addresses([str(message[name]) for name in RECIPIENT_FIELDS if message.get(name)])


def describe_request(body, content_type: str | None = None) -> Request:
    messages, batch = messages_of(_document(body))
    request = Request(recipients=[])
    for message in messages:
        recipients = message_recipients(message)
        request.entries.append(recipients)
        request.recipients.extend(recipients)
    if batch:
        request.batch = len(messages)
    headers = messages[0].get("Headers") if messages else None
    if isinstance(headers, list):
        for item in headers:
            if isinstance(item, dict) and isinstance(item.get("Name"), str) and item.get("Value") is not None:
                request.headers.setdefault(item["Name"].lower(), str(item["Value"]))
    return request


def inactive_refusals(recipients: list, answer: dict, text: str) -> list:
    """ErrorCode 406: the recipients the answer names as inactive (Postmark lists them in its
    Message); all of the message's recipients when it names none of them."""
    message = str(answer.get("Message") or "").lower()
    named = [a for a in recipients if a.lower() in message]
    return [(a, None, text) for a in (named or recipients)]


def _failure_text(status: int, answer: dict) -> str:
    text = f"HTTP {status}: {answer.get('Message') or 'error'}"
    code = answer.get("ErrorCode")
    return f"{text} (ErrorCode {code})" if code is not None else text


def describe_result(status: int, body, request: Request | None) -> Outcome:
    """The Outcome of an answer; `request` (describe_request's) aligns batch entries with answers."""
    outcome = Outcome(status_code=status)
    answer = _document(body)
    entries = request.entries if request is not None else []
    if status >= 400:
        details = answer if isinstance(answer, dict) else {}
        outcome.failure = (str(status), _failure_text(status, details))
        if details.get("ErrorCode") == INACTIVE_RECIPIENT and request is not None and request.batch is None:
            for recipients in entries:
                outcome.refusals.extend(inactive_refusals(recipients, details, outcome.failure[1]))
        return outcome
    answers = answer if isinstance(answer, list) else [answer]
    first_failure = None
    for index, item in enumerate(answers):
        if not isinstance(item, dict):
            continue
        code = item.get("ErrorCode", 0)
        if not code:
            if isinstance(item.get("MessageID"), str):
                outcome.message_ids.append(item["MessageID"])
            continue
        text = _failure_text(status, item)
        if first_failure is None:
            first_failure = (f"ErrorCode {code}", text)
        if index < len(entries):
            if code == INACTIVE_RECIPIENT:
                outcome.refusals.extend(inactive_refusals(entries[index], item, text))
            else:
                outcome.refusals.extend((a, None, text) for a in entries[index])
    if first_failure is not None and not outcome.message_ids:
        outcome.failure = first_failure
    return outcome
