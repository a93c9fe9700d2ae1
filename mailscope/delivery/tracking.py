"""The value delivery tracking puts into provider metadata, and reading it back.

With `MAILSCOPE_DELIVERY_TRACKING=on`, a send adds one key, `mailscope` (`KEY`), to the
per-message metadata its provider echoes in event webhooks. Its value is

    <traceparent>_<send time in ms since the epoch>
    00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01_1765000000123

the W3C traceparent of the send span and the time of the send: hex digits, dashes, an
underscore and digits only, so it is a valid SES message-tag value and fits Postmark's
80-character metadata values. Nothing else is added: no address, no app data. A message
that already carries the key (the app set it) keeps the app's value.
"""

from __future__ import annotations

import re
import time

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

KEY = "mailscope"
_VALUE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})_(\d{10,16})$")


def value_for(span, sent_at_s: float | None = None) -> str | None:
    """The tracking value of `span` (the send span), or None when it has no valid context."""
    try:
        context = span.get_span_context()
        if not context.is_valid:
            return None
        sent_ms = int((time.time() if sent_at_s is None else sent_at_s) * 1000)
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}_{sent_ms}"
    except Exception:
        return None


def current_value() -> str | None:
    """The tracking value of the current span (the send span while a send is being made)."""
    return value_for(trace.get_current_span())


def parse(value) -> tuple | None:
    """(remote parent SpanContext, send time in s) of a tracking value, or None."""
    if not isinstance(value, str):
        return None
    found = _VALUE.match(value.strip())
    if found is None:
        return None
    trace_id, span_id = int(found.group(1), 16), int(found.group(2), 16)
    if not trace_id or not span_id:
        return None
    context = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(found.group(3), 16)))
    return context, int(found.group(4)) / 1000.0


def parent_context(span_context):
    """An OTel Context whose current span is the remote send span."""
    return trace.set_span_in_context(NonRecordingSpan(span_context))
