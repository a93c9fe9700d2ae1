"""What the JSON send APIs (SendGrid, Brevo, Mailjet, Resend, SparkPost, Mandrill) share.

Each provider module turns its API's documented request and answer into the
`Request` and `Outcome` records of `providers.common`; the helpers here read
the bodies: a JSON document from the bytes the client sent or received, the
addresses of a recipient field however the API lets it be written (a string,
a comma-separated string, an object with an address key, or a list of
those), and the `HTTP <status>: <text>` failure every module reports.
"""

from __future__ import annotations

import json

from mailscope.instrumentation.providers.common import Outcome, split_addresses

MAX_BODY_BYTES = 16 * 1024 * 1024  # a body larger than this is not parsed


def document(body):
    """The JSON value of a request or response body, or None."""
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray)):
        if len(body) > MAX_BODY_BYTES:
            return None
        body = bytes(body).decode("utf-8", "replace")
    if not isinstance(body, str) or not body.strip() or len(body) > MAX_BODY_BYTES:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def addresses(value, key: str = "email") -> list:
    """Addresses of a recipient field: `"a@x"`, `"a@x, b@y"`, `{key: "a@x"}`, or a list of these."""
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    texts = []
    for item in value:
        if isinstance(item, dict):
            item = item.get(key)
        if isinstance(item, str) and item:
            texts.append(item)
    return split_addresses(texts)


def string_headers(value) -> dict:
    """A `{"Name": "value"}` header object, lower-cased as send_common expects."""
    if not isinstance(value, dict):
        return {}
    return {str(k).lower(): str(v) for k, v in value.items() if v is not None and not isinstance(v, (dict, list))}


def failed(status: int, text: str | None, error_type: str | None = None) -> Outcome:
    """The Outcome of an answer that is a failure as a whole."""
    outcome = Outcome(status_code=status)
    outcome.failure = (error_type or str(status), f"HTTP {status}: {text}" if text else f"HTTP {status}")
    return outcome


def coded(text, code) -> str | None:
    """An error text with the API's error code after it: `text (code)`, or whichever is present."""
    if text and code:
        return f"{text} ({code})"
    return str(text or code) if (text or code) else None


def joined(*parts) -> str | None:
    """Non-empty parts joined by ': ' (None when there are none)."""
    found = [str(p) for p in parts if p not in (None, "")]
    return ": ".join(found) or None
