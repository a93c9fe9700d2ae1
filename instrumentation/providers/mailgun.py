"""Mailgun's send API, as the request and response bodies show it.

`POST /v3/<domain>/messages` takes form fields (`from`, `to`, `cc`, `bcc`,
`subject`, `text`, `html`, `h:<Header>`, `recipient-variables`, ...), URL-encoded
or multipart; `POST /v3/<domain>/messages.mime` takes `to` and a `message` file
holding the whole MIME message. The answer is `{"id": "<message-id>", "message":
"Queued. Thank you."}`, or an error status with `{"message": "..."}` (some
errors, such as 401, are plain text).

- recipients: every address of every `to`, `cc` and `bcc` value (a value may list
  several, comma-separated);
- batch sending (`recipient-variables` present): Mailgun sends one message per
  `to` address, so `messaging.batch.message_count` is their number;
- `h:<Header>` fields and the headers of a `.mime` message feed the header
  mapping; the `.mime` message's size is `email.message.bytes`;
- the `id` is the Message-ID Mailgun gives the message: hashed as for SMTP.

Multipart bodies are scanned part by part; only the small recipient fields are
copied, never an attachment.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from mailscope.instrumentation.common import send as common
from mailscope.instrumentation.providers.common import Outcome, Request, split_addresses

PROVIDER = "mailgun"
RECIPIENT_FIELDS = ("to", "cc", "bcc")
BATCH_FIELD = "recipient-variables"
MIME_FIELD = "message"
HEADER_PREFIX = "h:"
MAX_FIELD_BYTES = 1_048_576  # a recipient field larger than this is not read


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def _boundary(content_type: str) -> bytes | None:
    for piece in content_type.split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        if key.strip().lower() == "boundary" and value:
            return value.strip().strip('"').encode("latin-1", "replace")
    return None


def _disposition_name(head: bytes) -> str | None:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-disposition:"):
            for piece in line.split(b";")[1:]:
                key, _, value = piece.strip().partition(b"=")
                if key.strip().lower() == b"name":
                    return value.strip().strip(b'"').decode("utf-8", "replace")
    return None


def multipart_fields(body: bytes, boundary: bytes, wanted) -> list:
    """(name, value bytes) of the parts whose name `wanted(name)` accepts."""
    fields = []
    delimiter = b"--" + boundary
    position = body.find(delimiter)
    while position != -1:
        start = position + len(delimiter)
        if body[start : start + 2] == b"--":
            break  # the closing delimiter
        head_end = body.find(b"\r\n\r\n", start)
        if head_end == -1:
            break
        following = body.find(b"\r\n" + delimiter, head_end)
        end = len(body) if following == -1 else following
        name = _disposition_name(body[start:head_end])
        if name is not None and wanted(name, end - head_end - 4):
            fields.append((name, body[head_end + 4 : end]))
        position = following + 2 if following != -1 else -1
    return fields


def _wanted(name: str, size: int) -> bool:
    if name == MIME_FIELD:
        return True
    return size <= MAX_FIELD_BYTES and (name in RECIPIENT_FIELDS or name == BATCH_FIELD or name.startswith(HEADER_PREFIX))


def form_fields(body, content_type: str | None) -> list:
    """(name, value) pairs of a URL-encoded or multipart form body (or the pairs themselves)."""
    if body is None:
        return []
    if isinstance(body, list):  # already split into fields (an unrendered httpx multipart body)
        return body
    content_type = content_type or ""
    if content_type.lower().startswith("multipart/"):
        boundary = _boundary(content_type)
        if boundary is None or not isinstance(body, (bytes, bytearray)):
            return []
        return multipart_fields(bytes(body), boundary, _wanted)
    return parse_qsl(_text(body), keep_blank_values=True)


def describe_request(body, content_type: str | None) -> Request:
    request = Request(recipients=[])
    values: dict = {name: [] for name in RECIPIENT_FIELDS}
    batch = False
    for name, value in form_fields(body, content_type):
        if name in values:
            values[name].append(_text(value))
        elif name == BATCH_FIELD:
            batch = True
        elif name == MIME_FIELD:
            request.size = len(value)
            for key, found in common.headers_from_raw(bytes(value) if not isinstance(value, str) else value).items():
                request.headers.setdefault(key, found)
        elif name.startswith(HEADER_PREFIX):
            request.headers[name[len(HEADER_PREFIX) :].lower()] = _text(value)
    to = split_addresses(values["to"])
    request.recipients = to + split_addresses(values["cc"] + values["bcc"])
    if batch:
        request.batch = len(to)
    return request


def error_message(body) -> str | None:
    if body is None:
        return None
    text = _text(body).strip()
    try:
        document = json.loads(text)
    except ValueError:
        return text or None
    if isinstance(document, dict) and document.get("message"):
        return str(document["message"])
    return text or None


def describe_result(status: int, body, request: Request | None) -> Outcome:
    outcome = Outcome(status_code=status)
    if status >= 400:
        message = error_message(body)
        outcome.failure = (str(status), f"HTTP {status}: {message}" if message else f"HTTP {status}")
        return outcome
    try:
        document = json.loads(_text(body)) if body else None
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("id"), str):
        outcome.message_ids.append(document["id"])
    return outcome
