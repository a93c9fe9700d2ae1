"""Spans, envelope and wait metric of queue operations, independent of how a command was issued.

The wrappers (queue/wrappers.py) decide *when* (sync, asyncio, pipelined); this
module decides *what*: a `send {queue}` PRODUCER span whose context goes into
the envelope, a `receive {queue}` CONSUMER span for a pop that returned
messages (with `email.queue.wait` and the `mailscope.queue.wait` histogram),
and the `process {queue}` span that follows it.

Parentage, following the messaging conventions:
- send: child of the app's current span; the Redis client span of the command
  (opentelemetry-instrumentation-redis, when active) is a child of send.
- receive: child of the consumer's current context, linked to each message's
  creation (send) context; created when the reply is in, so an empty pop leaves
  no span.
- process: for one message with trace context, a child of the producer's send
  span and linked to it; for a batch, a child of the current context linked to
  every message's creation context.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import Link, Status, StatusCode
from opentelemetry.trace.span import TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mailscope import attributes as attr
from mailscope._safety import internal_error, log_once
from mailscope.instrumentation.queue import envelope
from mailscope.instrumentation.queue import process
from mailscope.instrumentation.queue.commands import key_text
from mailscope.metrics import DESTINATION_LABELS_MAX, LabelCap
from mailscope.locks import owned_lock

SYSTEM = "redis"
FUTURE_LIMIT_S = 300.0  # enqueue times further in the future than this are unusable
MAX_MOVED = 4096  # moved messages remembered so LREM of the stripped payload still matches
MAX_MATCH_CACHE = 4096

_propagator = TraceContextTextMapPropagator()


@dataclass
class Received:
    """What one consumer command delivered."""

    queue: str
    messages: list  # as handed to the app (envelope stripped)
    creations: list  # SpanContext or None, per message
    waits: list  # seconds or None, per message
    unusable: int  # enqueue times too far in the future


def wait_seconds(enqueued: float | None, now: float):
    """(wait, unusable): now - enqueued clamped at 0; unusable when > 5 min in the future."""
    if enqueued is None:
        return None, False
    if enqueued - now > FUTURE_LIMIT_S:
        return None, True
    return max(0.0, now - enqueued), False


_TRACEPARENT_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def _creation(env):
    """The producer's SpanContext from an envelope, or None."""
    headers = envelope.carrier(env)
    if headers is None:
        return None
    match = _TRACEPARENT_00.fullmatch(headers[envelope.TRACEPARENT])
    if match is not None:  # what mailscope writes: parse it directly (the hot path)
        trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
        state = headers.get(envelope.TRACESTATE)
        span_context = trace.SpanContext(
            trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(int(match.group(3), 16)),
            trace_state=TraceState.from_header([state]) if state else None,
        )
    else:  # other versions: the W3C propagator's rules
        span_context = trace.get_current_span(_propagator.extract(headers)).get_span_context()
    return span_context if span_context.is_valid else None


def _attributes(operation: str, kind: str, queue: str, count: int) -> dict:
    attributes = {
        attr.OPERATION: operation,
        attr.MESSAGING_SYSTEM: SYSTEM,
        attr.MESSAGING_OPERATION_TYPE: kind,
        attr.MESSAGING_DESTINATION_NAME: queue,
    }
    if count > 1:
        attributes[attr.MESSAGING_BATCH_MESSAGE_COUNT] = count
    return attributes


def fail(span, exc: BaseException) -> None:
    """Mark `span` failed by `exc` and end it."""
    try:
        if isinstance(exc, Exception) and span.is_recording():
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        span.end()
    except Exception:
        internal_error("queue span failure")


def end(span) -> None:
    try:
        span.end()
    except Exception:
        internal_error("queue span end")


class QueueTelemetry:
    def __init__(self, tracer, instruments, globs, envelope_json: bool, gauges):
        self.tracer = tracer
        self.globs = globs
        self.envelope_json = envelope_json
        self.gauges = gauges
        self._wait = instruments.queue_wait
        self._wait_cap = LabelCap(DESTINATION_LABELS_MAX)
        self._matches: dict = {}
        self._moved: OrderedDict = OrderedDict()
        self._moved_lock = owned_lock(self)

    # --- keys -----------------------------------------------------------------------
    def queue_of(self, key):
        """The queue name of a Redis key, or None when it is not a configured queue."""
        try:
            return self._matches[key]
        except (KeyError, TypeError):
            pass
        name = key_text(key)
        queue = name if self.globs.matches(name) else None
        try:
            if len(self._matches) >= MAX_MATCH_CACHE:
                self._matches.clear()
            self._matches[key] = queue
        except TypeError:  # unhashable key type
            pass
        return queue

    # --- send -----------------------------------------------------------------------
    def start_send(self, client, queue: str, values: tuple):
        """Start the send span and return it with the values to push (enveloped when configured)."""
        self.gauges.note_queue(queue)
        self.gauges.note_client(client, used=True)
        span = self.tracer.start_span(
            attr.queue_span_name(attr.OP_QUEUE_PUBLISH, queue),
            kind=trace.SpanKind.PRODUCER,
            attributes=_attributes(attr.OP_QUEUE_PUBLISH, "send", queue, len(values)),
        )
        if not self.envelope_json:
            return span, values
        try:
            fields = {}
            span_context = span.get_span_context()
            if span_context.is_valid:  # W3C trace context, version 00
                fields[envelope.TRACEPARENT] = "00-%032x-%016x-%02x" % (
                    span_context.trace_id, span_context.span_id, span_context.trace_flags
                )
                fields[envelope.TRACESTATE] = span_context.trace_state.to_header()
            fields[envelope.ENQUEUED_AT] = round(time.time(), 6)
            member = envelope.member(fields)
            return span, tuple(envelope.inject(value, member) for value in values)
        except Exception:
            internal_error("queue envelope inject")
            return span, values

    # --- receive --------------------------------------------------------------------
    def unpack(self, spec, args, kwargs, reply):
        """(reply for the app, Received or None): strip envelopes from what a consumer command returned."""
        key, messages, rebuild = spec.unpack(reply, args, kwargs)
        if not messages:
            return reply, None
        queue = self.queue_of(key)
        if queue is None:
            return reply, None
        now = time.time()
        stripped, creations, waits = [], [], []
        unusable = 0
        changed = False
        for message in messages:
            payload, env = envelope.strip(message)
            if env is not None:
                changed = True
                wait, bad = wait_seconds(envelope.enqueued_at(env), now)
                unusable += bad
                creation = _creation(env)
            else:
                wait, creation = None, None
            stripped.append(payload)
            creations.append(creation)
            waits.append(wait)
        if changed:
            reply = rebuild(stripped)
            if spec.destination is not None:
                self._remember_moved(spec.destination(args, kwargs), messages, stripped)
        return reply, Received(queue, stripped, creations, waits, unusable)

    def record_receive(self, got: Received, start_ns: int) -> None:
        """The receive span and wait metric of one consumer command."""
        self.gauges.note_queue(got.queue)
        known = [w for w in got.waits if w is not None]
        attributes = _attributes(attr.OP_QUEUE_RECEIVE, "receive", got.queue, len(got.messages))
        if known:
            attributes[attr.QUEUE_WAIT] = max(known)  # a batch reports its longest wait
        span = self.tracer.start_span(
            attr.queue_span_name(attr.OP_QUEUE_RECEIVE, got.queue),
            kind=trace.SpanKind.CONSUMER,
            attributes=attributes,
            links=[Link(c) for c in got.creations if c is not None],
            start_time=start_ns,
        )
        if got.unusable:
            span.add_event(attr.EVENT_QUEUE_WAIT_UNUSABLE)
            log_once(
                "queue:wait-future",
                "mailscope: a message on %s was enqueued more than 5 minutes in the future (clock skew?); "
                "its wait time is not recorded",
                got.queue,
            )
        span.end()
        if known:
            labels = {attr.MESSAGING_DESTINATION_NAME: self._wait_cap(got.queue)}
            for wait in known:
                self._wait.record(wait, labels)

    def receive_failed(self, queue: str, start_ns: int, exc: BaseException) -> None:
        span = self.tracer.start_span(
            attr.queue_span_name(attr.OP_QUEUE_RECEIVE, queue),
            kind=trace.SpanKind.CONSUMER,
            attributes=_attributes(attr.OP_QUEUE_RECEIVE, "receive", queue, 1),
            start_time=start_ns,
        )
        fail(span, exc)

    # --- process --------------------------------------------------------------------
    def process_scope(self, queue: str, messages: list, creations: list):
        """A new (not yet current) process scope for messages of `queue`."""
        valid = [c for c in creations if c is not None]
        parent = None
        if len(messages) == 1 and valid:
            parent = trace.set_span_in_context(trace.NonRecordingSpan(valid[0]))
        return process.new_scope(
            self.tracer,
            attr.queue_span_name(attr.OP_QUEUE_PROCESS, queue),
            _attributes(attr.OP_QUEUE_PROCESS, "process", queue, len(messages)),
            parent,
            [Link(c) for c in valid],
            queue,
            messages,
            valid[0] if len(messages) == 1 and valid else None,
        )

    def start_processing(self, received: list) -> None:
        """After a consumer command delivered: the implicit process span of this thread or task."""
        if not received:
            return
        messages = [m for got in received for m in got.messages]
        creations = [c for got in received for c in got.creations]
        process.open_implicit(self.process_scope(received[0].queue, messages, creations))

    # --- moves and LREM -------------------------------------------------------------
    def _remember_moved(self, destination, originals: list, stripped: list) -> None:
        if destination is None:
            return
        dest = key_text(destination)
        with self._moved_lock:
            for original, payload in zip(originals, stripped):
                if original is not payload and isinstance(payload, (bytes, str)):
                    self._moved[(dest, payload)] = original
                    self._moved.move_to_end((dest, payload))
            while len(self._moved) > MAX_MOVED:
                self._moved.popitem(last=False)

    def lrem_value(self, name, value):
        """The stored (enveloped) form of a stripped message the app removes from a move's destination."""
        if not self._moved or not isinstance(value, (bytes, str)):
            return value
        key = (key_text(name), value)
        with self._moved_lock:
            return self._moved.pop(key, value)
