"""wrapt wrappers around redis-py's list-command methods, for sync, asyncio and pipelined use.

The methods wrapped are the command methods themselves (`ListCommands.lpush`,
`BasicKeyCommands.lmove`, ...), which every client class inherits and which call
`execute_command`. Wrapping one level above `execute_command` keeps mailscope's
send span the parent of opentelemetry-instrumentation-redis's per-command span
whichever instrumentor was loaded first, and one wrapper serves the sync client,
the asyncio client (the method returns a coroutine) and pipelines (the method
queues the command and returns the pipeline).

Pipelines: a queue command records a pending entry on the pipeline object
(pointing at its entry in `command_stack`); `Pipeline.execute` settles them from
the replies. Entries dropped by a `reset()` before execute are never reported.
Cluster pipelines pass through untouched.

The host app comes first: a mailscope failure before the command falls back to
the original arguments; after it, to the original reply; the app's own
exceptions propagate as the very same objects.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from mailscope._safety import internal_error
from mailscope.instrumentation.queue import process
from mailscope.instrumentation.queue.commands import Producer
from mailscope.instrumentation.queue.telemetry import end, fail

PENDING = "_mailscope_queue_pending"

SYNC, ASYNC, PIPE, APIPE, SKIP = "sync", "async", "pipe", "apipe", "skip"


@dataclass
class PendingSend:
    span: object
    entry: object


@dataclass
class PendingReceive:
    spec: object
    args: tuple
    kwargs: dict
    entry: object
    queue: str


def _classify(cls) -> str:
    import redis.asyncio.client as aclient
    import redis.client as client

    if issubclass(cls, aclient.Pipeline):
        return APIPE
    if issubclass(cls, client.Pipeline):
        return PIPE
    names = {c.__name__ for c in cls.__mro__}
    if "ClusterPipeline" in names:
        return SKIP
    if issubclass(cls, aclient.Redis) or "RedisCluster" in names and cls.__module__.startswith("redis.asyncio"):
        return ASYNC
    return SYNC


class QueueWrappers:
    def __init__(self, telemetry):
        self.t = telemetry
        self._kinds: dict = {}

    def kind(self, instance) -> str:
        cls = type(instance)
        kind = self._kinds.get(cls)
        if kind is None:
            kind = self._kinds[cls] = _classify(cls)
        return kind

    # --- producers ------------------------------------------------------------------
    def produce(self, wrapped, instance, args, kwargs):
        try:
            key, values = Producer.split(args, kwargs)
            queue = self.t.queue_of(key) if key is not None and values else None
            kind = self.kind(instance) if queue is not None else SKIP
        except Exception:
            internal_error("queue send")
            queue, kind = None, SKIP
        if queue is None or kind == SKIP or not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        if kind == ASYNC:
            return self._produce_async(wrapped, instance, args, kwargs, queue, values)
        if kind in (PIPE, APIPE):
            return self._produce_pipelined(wrapped, instance, args, kwargs, queue, values)
        span, args2, kwargs2 = self._begin_send(instance, queue, args, kwargs, values)
        if span is None:
            return wrapped(*args, **kwargs)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            reply = wrapped(*args2, **kwargs2)
        except BaseException as exc:
            fail(span, exc)
            raise
        finally:
            otel_context.detach(token)
        end(span)
        return reply

    def _begin_send(self, instance, queue, args, kwargs, values):
        try:
            span, new_values = self.t.start_send(instance, queue, values)
        except Exception:
            internal_error("queue send start")
            return None, args, kwargs
        try:
            args2, kwargs2 = Producer.rebuild(args, kwargs, new_values)
        except Exception:
            internal_error("queue send args")
            args2, kwargs2 = args, kwargs
        return span, args2, kwargs2

    def _produce_async(self, wrapped, instance, args, kwargs, queue, values):
        async def send():
            span, args2, kwargs2 = self._begin_send(instance, queue, args, kwargs, values)
            if span is None:
                return await wrapped(*args, **kwargs)
            token = otel_context.attach(trace.set_span_in_context(span))
            try:
                reply = await wrapped(*args2, **kwargs2)
            except BaseException as exc:
                fail(span, exc)
                raise
            finally:
                otel_context.detach(token)
            end(span)
            return reply

        return send()

    def _produce_pipelined(self, wrapped, instance, args, kwargs, queue, values):
        span, args2, kwargs2 = self._begin_send(instance, queue, args, kwargs, values)
        if span is None:
            return wrapped(*args, **kwargs)
        before = _stack_size(instance)
        try:
            reply = wrapped(*args2, **kwargs2)
        except BaseException as exc:
            fail(span, exc)
            raise
        entry = _new_entry(instance, before)
        if entry is not None:
            _remember(instance, PendingSend(span, entry))
            return reply
        # executed at once (a pipeline in WATCH mode)
        if inspect.isawaitable(reply):
            return _settle_async(reply, span)
        end(span)
        return reply

    # --- consumers ------------------------------------------------------------------
    def consumer(self, spec):
        def consume(wrapped, instance, args, kwargs):
            try:
                sources = [self.t.queue_of(k) for k in spec.sources(args, kwargs) if k is not None]
                sources = [q for q in sources if q is not None]
                kind = self.kind(instance) if sources else SKIP
            except Exception:
                internal_error("queue receive")
                sources, kind = [], SKIP
            if not sources or kind == SKIP:
                return wrapped(*args, **kwargs)
            if kind == ASYNC:
                return self._consume_async(spec, wrapped, instance, args, kwargs, sources)
            if kind in (PIPE, APIPE):
                return self._consume_pipelined(spec, wrapped, instance, args, kwargs, sources)
            enabled = self._before_receive(instance, sources)
            start_ns = time.time_ns()
            try:
                reply = wrapped(*args, **kwargs)
            except Exception as exc:
                if enabled:
                    self._receive_failed(sources[0], start_ns, exc)
                raise
            return self._after_receive(spec, args, kwargs, reply, start_ns, enabled)

        return consume

    def _before_receive(self, instance, sources) -> bool:
        enabled = is_instrumentation_enabled()
        if enabled:
            try:
                process.end_current()
                self.t.gauges.note_client(instance, used=True)
            except Exception:
                internal_error("queue receive start")
        return enabled

    def _receive_failed(self, queue, start_ns, exc) -> None:
        try:
            self.t.receive_failed(queue, start_ns, exc)
        except Exception:
            internal_error("queue receive failure")

    def _after_receive(self, spec, args, kwargs, reply, start_ns, enabled):
        try:
            new_reply, got = self.t.unpack(spec, args, kwargs, reply)
        except Exception:
            internal_error("queue receive unpack")
            return reply
        if got is not None and enabled:
            try:
                self.t.record_receive(got, start_ns)
                self.t.start_processing([got])
            except Exception:
                internal_error("queue receive spans")
        return new_reply

    def _consume_async(self, spec, wrapped, instance, args, kwargs, sources):
        async def receive():
            enabled = self._before_receive(instance, sources)
            start_ns = time.time_ns()
            try:
                reply = await wrapped(*args, **kwargs)
            except Exception as exc:
                if enabled:
                    self._receive_failed(sources[0], start_ns, exc)
                raise
            return self._after_receive(spec, args, kwargs, reply, start_ns, enabled)

        return receive()

    def _consume_pipelined(self, spec, wrapped, instance, args, kwargs, sources):
        before = _stack_size(instance)
        start_ns = time.time_ns()
        reply = wrapped(*args, **kwargs)
        entry = _new_entry(instance, before)
        if entry is not None:
            try:
                _remember(instance, PendingReceive(spec, args, kwargs, entry, sources[0]))
            except Exception:
                internal_error("queue pipelined receive")
            return reply
        if inspect.isawaitable(reply):  # executed at once (WATCH mode), asyncio
            async def settle():
                enabled = self._before_receive(instance, sources)
                return self._after_receive(spec, args, kwargs, await reply, start_ns, enabled)

            return settle()
        return self._after_receive(spec, args, kwargs, reply, start_ns, is_instrumentation_enabled())

    # --- LREM after a move ------------------------------------------------------------
    def lrem(self, wrapped, instance, args, kwargs):
        try:
            if len(args) >= 3:
                value = self.t.lrem_value(args[0], args[2])
                if value is not args[2]:
                    args = (args[0], args[1], value, *args[3:])
            elif "value" in kwargs:
                name = args[0] if args else kwargs.get("name")
                value = self.t.lrem_value(name, kwargs["value"])
                if value is not kwargs["value"]:
                    kwargs = {**kwargs, "value": value}
        except Exception:
            internal_error("queue lrem")
        return wrapped(*args, **kwargs)

    # --- client creation --------------------------------------------------------------
    def created(self, wrapped, instance, args, kwargs):
        result = wrapped(*args, **kwargs)
        try:
            self.t.gauges.note_client(instance, used=False)
        except Exception:
            internal_error("queue client")
        return result

    # --- pipeline execute ---------------------------------------------------------------
    def execute(self, wrapped, instance, args, kwargs):
        pending = _take_pending(instance)
        if not pending:
            return wrapped(*args, **kwargs)
        if self.kind(instance) == APIPE:
            return self._execute_async(wrapped, instance, args, kwargs, pending)
        live, enabled = self._prepare(instance, pending)
        start_ns = time.time_ns()
        try:
            replies = wrapped(*args, **kwargs)
        except Exception as exc:
            self._pipeline_failed(live, start_ns, exc)
            raise
        return self._settle(live, replies, start_ns, enabled)

    def _execute_async(self, wrapped, instance, args, kwargs, pending):
        async def execute():
            live, enabled = self._prepare(instance, pending)
            start_ns = time.time_ns()
            try:
                replies = await wrapped(*args, **kwargs)
            except Exception as exc:
                self._pipeline_failed(live, start_ns, exc)
                raise
            return self._settle(live, replies, start_ns, enabled)

        return execute()

    def _prepare(self, instance, pending):
        """Pending entries still in the command stack, with their index; end the open process span."""
        try:
            stack = instance.command_stack
            where = {id(entry): i for i, entry in enumerate(stack)}
            live = [(p, where[id(p.entry)]) for p in pending if id(p.entry) in where]
            enabled = is_instrumentation_enabled()
            if enabled and any(isinstance(p, PendingReceive) for p, _ in live):
                process.end_current()
            return live, enabled
        except Exception:
            internal_error("queue pipeline execute")
            return [], False

    def _pipeline_failed(self, live, start_ns, exc) -> None:
        for p, _ in live:
            if isinstance(p, PendingSend):
                fail(p.span, exc)
            else:
                self._receive_failed(p.queue, start_ns, exc)

    def _settle(self, live, replies, start_ns, enabled):
        if not live:
            return replies
        try:
            out = None
            received = []
            for p, i in live:
                reply = replies[i] if i < len(replies) else None
                if isinstance(p, PendingSend):
                    fail(p.span, reply) if isinstance(reply, Exception) else end(p.span)
                    continue
                if isinstance(reply, Exception):
                    if enabled:
                        self._receive_failed(p.queue, start_ns, reply)
                    continue
                new_reply, got = self.t.unpack(p.spec, p.args, p.kwargs, reply)
                if new_reply is not reply:
                    if out is None:
                        out = list(replies)
                    out[i] = new_reply
                if got is not None and enabled:
                    self.t.record_receive(got, start_ns)
                    received.append(got)
            if received:
                self.t.start_processing(received)
            return out if out is not None else replies
        except Exception:
            internal_error("queue pipeline settle")
            return replies


async def _settle_async(reply, span):
    try:
        result = await reply
    except BaseException as exc:
        fail(span, exc)
        raise
    end(span)
    return result


def _stack_size(pipeline) -> int:
    try:
        return len(pipeline.command_stack)
    except Exception:
        return -1


def _new_entry(pipeline, before: int):
    """The command_stack entry the call just queued, or None when it ran at once."""
    try:
        stack = pipeline.command_stack
        if before >= 0 and len(stack) == before + 1:
            return stack[-1]
    except Exception:
        pass
    return None


def _remember(pipeline, item) -> None:
    """Add a pending entry; entries a reset() discarded are pruned so they cannot pile up."""
    pending = pipeline.__dict__.get(PENDING)
    if pending is None:
        pending = pipeline.__dict__[PENDING] = []
    stack = pipeline.command_stack
    if len(pending) >= len(stack):
        live = {id(entry) for entry in stack}
        pending[:] = [p for p in pending if id(p.entry) in live]
    pending.append(item)


def _take_pending(pipeline):
    try:
        return pipeline.__dict__.pop(PENDING, None)
    except Exception:
        return None
