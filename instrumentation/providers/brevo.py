"""Brevo (formerly Sendinblue) transactional email: `POST /v3/smtp/email`.

Request (JSON): `to`, `cc`, `bcc` as lists of `{"email", "name"}`, `headers` as an
object, or `messageVersions`: a list of versions each with its own `to`, `cc`,
`bcc` (one message per version: `messaging.batch.message_count`). Answer: 201
`{"messageId": "<...>"}` (`{"messageIds": [...]}` for versions); an error is a
4xx with `{"code": "invalid_parameter", "message": "..."}`, classified as
`HTTP <status>: <message> (<code>)`.
"""

from __future__ import annotations

from mailscope.instrumentation.providers.common import Outcome, Request
from mailscope.instrumentation.providers.jsonapi import addresses, coded, document, failed, string_headers

PROVIDER = "brevo"
RECIPIENT_FIELDS = ("to", "cc", "bcc")


def _recipients(item: dict) -> list:
    return [a for name in RECIPIENT_FIELDS for a in addresses(item.get(name))]


def describe_request(body, content_type=None) -> Request:
    message = document(body)
    request = Request(recipients=[])
    if not isinstance(message, dict):
        return request
    versions = message.get("messageVersions")
    if isinstance(versions, list) and versions:
        for version in versions:
            recipients = _recipients(version) if isinstance(version, dict) else []
            request.entries.append(recipients)
            request.recipients.extend(recipients)
        request.batch = len(versions)
    else:
        request.recipients = _recipients(message)
    request.headers = string_headers(message.get("headers"))
    return request


def describe_result(status: int, body, request: Request | None) -> Outcome:
    answer = document(body)
    answer = answer if isinstance(answer, dict) else {}
    if status >= 400:
        return failed(status, coded(answer.get("message"), answer.get("code")))
    outcome = Outcome(status_code=status)
    if isinstance(answer.get("messageId"), str):
        outcome.message_ids.append(answer["messageId"])
    elif isinstance(answer.get("messageIds"), list):
        outcome.message_ids.extend(str(i) for i in answer["messageIds"] if i)
    return outcome
