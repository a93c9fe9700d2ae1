"""The JSON envelope that carries trace context and enqueue time inside a queued message.

`inject(payload, fields)` appends `"_mailscope": {...}` as the last member of a
JSON-object payload, right before its closing brace, and changes nothing else.
`strip(payload)` undoes exactly that: it removes the member it finds just before
the final brace, so the receiver gets the very bytes (or str) that were pushed,
whatever the key order, whitespace or escaping of the original.

Anything else passes untouched: payloads that are not JSON objects (arrays,
scalars, non-UTF-8 bytes, plain text), payloads that already carry a
`_mailscope` key when pushed, and envelopes that are not exactly what `inject`
writes when received (unknown or missing fields, another order or spelling,
wrong types, not the last member, not inside a JSON object).
"""

from __future__ import annotations

import json
import re

KEY = "_mailscope"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
ENQUEUED_AT = "enqueued_at"
FIELDS = frozenset((TRACEPARENT, TRACESTATE, ENQUEUED_AT))

_WS = " \t\n\r"
_WS_B = b" \t\n\r"
_MARKER = '"' + KEY + '":'
_MARKER_B = _MARKER.encode()
_decoder = json.JSONDecoder()


def member(fields: dict) -> str:
    """The serialized `"_mailscope":{...}` member (ASCII; json.dumps escapes the rest)."""
    return _MARKER + json.dumps(fields, separators=(",", ":"))


def inject(payload, fields):
    """`payload` with the envelope appended, or `payload` itself when it is not a JSON object.

    `fields` is the envelope dict, or what `member(fields)` made of it (serialize once per push).
    """
    if isinstance(payload, bytes):
        marker, ws, open_, close, comma = _MARKER_B, _WS_B, b"{", b"}", b","
    elif isinstance(payload, str):
        marker, ws, open_, close, comma = _MARKER, _WS, "{", "}", ","
    else:
        return payload
    body = payload.rstrip(ws)
    if not body.endswith(close) or not payload.lstrip(ws).startswith(open_):
        return payload
    if marker[:-1] in payload:
        return payload  # the key is taken; never inject twice
    try:
        parsed = json.loads(payload)
    except (ValueError, RecursionError):
        return payload
    if not isinstance(parsed, dict):
        return payload
    text = fields if isinstance(fields, str) else member(fields)
    if isinstance(payload, bytes):
        text = text.encode("ascii")
    at = len(body) - 1  # the closing brace
    return payload[:at] + (comma if parsed else payload[:0]) + text + payload[at:]


def strip(payload):
    """`(original, envelope)` when `payload` carries our envelope, else `(payload, None)`."""
    if isinstance(payload, bytes):
        marker, ws, open_ = _MARKER_B, _WS_B, b"{"
    elif isinstance(payload, str):
        marker, ws, open_ = _MARKER, _WS, "{"
    else:
        return payload, None
    at = payload.rfind(marker)
    if at < 0:
        return payload, None
    start = at + len(marker)
    tail = payload[start:]
    if isinstance(tail, bytes):
        try:
            tail = tail.decode("ascii")
        except UnicodeDecodeError:
            return payload, None
    try:
        envelope, end = _decoder.raw_decode(tail)
    except (ValueError, RecursionError):
        return payload, None
    rest = tail[end:]
    if rest[:1] != "}" or rest[1:].strip(_WS) or not _is_envelope(envelope):
        return payload, None
    # Only what `inject` writes: a JSON-object payload, and the member exactly as `member()`
    # serializes it. An app's own payload that merely resembles an envelope (its own
    # `_mailscope` key, a different spelling, text that is not an object) reaches it untouched.
    if tail[:end] != json.dumps(envelope, separators=(",", ":")) or not payload.lstrip(ws).startswith(open_):
        return payload, None
    head = payload[:at]
    closing = payload[start + end:]  # the original from its final brace on
    if head.endswith(b"," if isinstance(head, bytes) else ","):
        original = head[:-1] + closing
    elif head.strip(ws) == open_:  # the original was an empty object
        return head + closing, envelope
    else:
        return payload, None
    # `inject` only enveloped JSON objects, with a comma only after a member: anything else
    # merely looks like an envelope
    try:
        parsed = json.loads(original)
        if not isinstance(parsed, dict) or not parsed:
            return payload, None
    except (ValueError, RecursionError):
        return payload, None
    return original, envelope


# the members `inject` writes, in its order: enqueue time always, trace context when there is one
_SHAPES = ((ENQUEUED_AT,), (TRACEPARENT, TRACESTATE, ENQUEUED_AT))
_TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def _is_envelope(value) -> bool:
    if not isinstance(value, dict) or tuple(value) not in _SHAPES:
        return False
    if TRACEPARENT in value:
        if not isinstance(value[TRACEPARENT], str) or not _TRACEPARENT.fullmatch(value[TRACEPARENT]):
            return False
        if not isinstance(value[TRACESTATE], str):
            return False
    at = value[ENQUEUED_AT]
    # a wall-clock time.time() rounded to microseconds: a float, after 2001
    return isinstance(at, float) and at == at and at > 1e9


def enqueued_at(envelope: dict | None) -> float | None:
    if not envelope:
        return None
    value = envelope.get(ENQUEUED_AT)
    return float(value) if value is not None else None


def carrier(envelope: dict | None) -> dict | None:
    """The W3C trace-context headers of an envelope, when it has them."""
    if not envelope or TRACEPARENT not in envelope:
        return None
    headers = {TRACEPARENT: envelope[TRACEPARENT]}
    if envelope.get(TRACESTATE):
        headers[TRACESTATE] = envelope[TRACESTATE]
    return headers
