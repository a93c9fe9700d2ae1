"""Celery tasks as queue operations, from Celery's signals (any broker).

Publish (`before_task_publish`): the message gets a `mailscope_published_at`
header (Unix time). Without opentelemetry-instrumentation-celery active, mailscope
also wraps `Celery.send_task` (which `apply_async`, `delay` and `retry` go through)
in a `send {queue}` PRODUCER span (queue.publish, `messaging.system=celery`),
current while the message is published, whose W3C trace context goes into the
message headers (`traceparent`: the key the upstream instrumentation reads and
writes too, so either side may run it).

Execution (`task_prerun` .. `task_postrun`): one span per task execution carries
`mailscope.operation=queue.process`, `messaging.system=celery`,
`messaging.operation.type=process`, `messaging.destination.name` (the queue, from
the delivery's routing key), `email.queue.wait` (seconds from publish, or from the
ETA of a countdown/retry, to execution start, when the header is there),
`celery.task_name` and `celery.retries` (0 on the first execution). Every
execution with a known wait records one `mailscope.queue.wait` sample.
- Without opentelemetry-instrumentation-celery: mailscope's own `process {queue}`
  CONSUMER span, a child of the publisher's context from the headers (and linked
  to it), current while the task runs.
- With it active: no span of mailscope's own. The attributes go on Celery's
  `run/{task}` span, so there is one span per execution and one trace root.
  Whichever order the two instrumentations' signal handlers run in, the span is
  still open at `task_retry`/`task_failure`/`task_postrun`, where mailscope
  (re)applies them.

Failures: `task_failure` and `task_retry` make the span ERROR with `error.type`
and an exception event (for a retry, the exception that caused it when there is
one), so the error stages classify it. With the upstream instrumentation, a
failure is already recorded by it; mailscope adds the ERROR status for retries.

Eagerly applied tasks (`task.apply()`, `task_always_eager`) never went through a
queue: they get no queue span.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime

from opentelemetry import context, trace
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import Link, SpanKind

from mailscope import attributes as attr
from mailscope._safety import internal_error
from mailscope.locks import owned_lock
from mailscope.instrumentation.common import wrapper_layers
from mailscope.instrumentation.common.failures import mark_failed
from mailscope.instrumentation.queue.telemetry import wait_seconds
from mailscope.metrics import DESTINATION_LABELS_MAX, LabelCap
from mailscope.version import __version__

PUBLISHED_HEADER = "mailscope_published_at"
DEFAULT_QUEUE = "celery"  # Celery's own default queue name
MAX_OPEN = 10_000  # spans of publishes and executions in flight, per process
_UPSTREAM = "opentelemetry.instrumentation.celery"


def upstream_active() -> bool:
    """Whether opentelemetry-instrumentation-celery is instrumenting this process."""
    module = sys.modules.get(_UPSTREAM)
    instance = getattr(getattr(module, "CeleryInstrumentor", None), "_instance", None)
    return bool(getattr(instance, "is_instrumented_by_opentelemetry", False))


def _upstream_span(task, task_id):
    """Celery's `run/{task}` span of this execution, while it is open."""
    try:
        from opentelemetry.instrumentation.celery import utils

        found = utils.retrieve_context(task, task_id)
    except Exception:
        return None
    span = found[0] if found else None
    return span if span is not None and span.is_recording() else None


class _Getter:
    """Reads a propagation header Celery copied onto the task request."""

    @staticmethod
    def get(carrier, key):
        value = getattr(carrier, key, None)
        return [value] if isinstance(value, str) else None

    @staticmethod
    def keys(carrier):
        return []


def _publish_queue(kwargs):
    for queue in kwargs.get("declare") or ():
        name = getattr(queue, "name", None)
        if isinstance(name, str) and name:
            return name
    routing_key = kwargs.get("routing_key")
    return routing_key if isinstance(routing_key, str) and routing_key else None


def _eta_timestamp(eta):
    if isinstance(eta, datetime):
        return eta.timestamp()
    if isinstance(eta, str):
        try:
            return datetime.fromisoformat(eta).timestamp()
        except ValueError:
            return None
    return None


def _attributes(operation: str, kind: str, queue: str, task_name) -> dict:
    attributes = {
        attr.OPERATION: operation,
        attr.MESSAGING_SYSTEM: attr.MESSAGING_SYSTEM_CELERY,
        attr.MESSAGING_OPERATION_TYPE: kind,
        attr.MESSAGING_DESTINATION_NAME: queue,
    }
    if isinstance(task_name, str):
        attributes[attr.CELERY_TASK_NAME] = task_name
    return attributes


class CeleryTelemetry:
    """Signal handlers; `connect()` once celery is imported, `disconnect()` on uninstrument."""

    def __init__(self, tracer, queue_wait):
        self.tracer = tracer
        self._wait = queue_wait
        self._wait_cap = LabelCap(DESTINATION_LABELS_MAX)
        self._publish_span = threading.local()  # our publish span, while send_task runs
        self._running: dict = {}  # task id -> (span, context token) or (None, attributes) for upstream's span
        self._lock = owned_lock(self)  # a prefork child gets it unlocked (mailscope/locks.py)
        self._signals = None

    # --- wiring ---------------------------------------------------------------------
    def connect(self, signals, app_class) -> None:
        self._signals = signals
        for signal, handler in self._handlers(signals):
            signal.connect(handler, weak=False, dispatch_uid=f"mailscope.{handler.__name__}")
        self._patch = wrapper_layers.apply(app_class, "send_task", self.send_task)

    def disconnect(self) -> None:
        signals, self._signals = self._signals, None
        if signals is not None:
            for signal, handler in self._handlers(signals):
                signal.disconnect(handler, dispatch_uid=f"mailscope.{handler.__name__}")
            wrapper_layers.remove(self._patch)

    def _handlers(self, signals):
        return (
            (signals.before_task_publish, self.before_publish),
            (signals.task_prerun, self.prerun),
            (signals.task_retry, self.retry),
            (signals.task_failure, self.failure),
            (signals.task_postrun, self.postrun),
            (signals.worker_process_shutdown, self.process_shutdown),
        )

    def _remember(self, table: dict, key, value) -> None:
        with self._lock:
            if len(table) >= MAX_OPEN:  # a signal pair that never completed: forget the oldest
                table.pop(next(iter(table)), None)
            table[key] = value

    def _forget(self, table: dict, key):
        with self._lock:
            return table.pop(key, None)

    # --- publish --------------------------------------------------------------------
    def send_task(self, wrapped, instance, args, kwargs):
        """`Celery.send_task` inside our publish span (named once the queue is known)."""
        opened = None
        if self._signals is not None and not upstream_active():
            try:
                span = self.tracer.start_span(
                    attr.queue_span_name(attr.OP_QUEUE_PUBLISH, DEFAULT_QUEUE), kind=SpanKind.PRODUCER,
                    attributes=_attributes(attr.OP_QUEUE_PUBLISH, "send", DEFAULT_QUEUE, None),
                )
                opened = (span, context.attach(trace.set_span_in_context(span)), getattr(self._publish_span, "span", None))
                self._publish_span.span = span
            except Exception:
                internal_error("celery publish span")
        if opened is None:
            return wrapped(*args, **kwargs)
        try:
            return wrapped(*args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, Exception):
                mark_failed(opened[0], exc)
            raise
        finally:
            try:
                self._publish_span.span = opened[2]
                context.detach(opened[1])
                opened[0].end()
            except Exception:
                internal_error("celery publish span end")

    def before_publish(self, sender=None, headers=None, **kwargs):
        try:
            if not isinstance(headers, dict):
                return  # task protocol 1: no headers to carry anything
            headers[PUBLISHED_HEADER] = round(time.time(), 6)
            if upstream_active():
                return  # Celery's apply_async span carries the trace context
            span = getattr(self._publish_span, "span", None)
            if span is not None and span is trace.get_current_span():
                queue = _publish_queue(kwargs) or DEFAULT_QUEUE
                span.update_name(attr.queue_span_name(attr.OP_QUEUE_PUBLISH, queue))
                span.set_attributes(_attributes(attr.OP_QUEUE_PUBLISH, "send", queue, sender))
            inject(headers)
        except Exception:
            internal_error("celery before_task_publish")

    # --- execution ------------------------------------------------------------------
    def prerun(self, task_id=None, task=None, **kwargs):
        try:
            request = getattr(task, "request", None)
            if task_id is None or request is None or getattr(request, "is_eager", False):
                return
            now = time.time()
            delivery = getattr(request, "delivery_info", None) or {}
            queue = delivery.get("routing_key") or getattr(task.app.conf, "task_default_queue", None) or DEFAULT_QUEUE
            attributes = _attributes(attr.OP_QUEUE_PROCESS, "process", queue, getattr(task, "name", None))
            retries = getattr(request, "retries", None)
            if isinstance(retries, int):
                attributes[attr.CELERY_RETRIES] = retries
            published = getattr(request, PUBLISHED_HEADER, None)
            if isinstance(published, (int, float)):
                eta = _eta_timestamp(getattr(request, "eta", None))
                wait, _ = wait_seconds(max(published, eta) if eta is not None else published, now)
                if wait is not None:
                    attributes[attr.QUEUE_WAIT] = wait
                    self._wait.record(wait, {attr.MESSAGING_DESTINATION_NAME: self._wait_cap(queue)})
            if upstream_active():
                self._remember(self._running, task_id, (None, attributes))
                self._span(task, task_id)
                return
            parent = extract(request, getter=_Getter())
            producer = trace.get_current_span(parent).get_span_context()
            span = self.tracer.start_span(
                attr.queue_span_name(attr.OP_QUEUE_PROCESS, queue),
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes=attributes,
                links=[Link(producer)] if producer.is_valid else None,
            )
            token = context.attach(trace.set_span_in_context(span, parent))
            self._remember(self._running, task_id, (span, token))
        except Exception:
            internal_error("celery task_prerun")

    def _span(self, task, task_id):
        """(span, ours) of this execution, span None when it has none: ours, or the open upstream
        run span, with our attributes applied to it again (the first time when its handler ran after ours)."""
        with self._lock:
            entry = self._running.get(task_id)
        if entry is None or entry[0] is not None:
            return (entry[0], True) if entry is not None else (None, False)
        span = _upstream_span(task, task_id)
        if span is not None:
            span.set_attributes(entry[1])
        return span, False

    def retry(self, sender=None, request=None, reason=None, **kwargs):
        try:
            span, _ = self._span(sender, getattr(request, "id", None))
            if span is None:
                return
            cause = getattr(reason, "exc", None)
            exc = cause if isinstance(cause, Exception) else reason
            if isinstance(exc, Exception):
                mark_failed(span, exc)
        except Exception:
            internal_error("celery task_retry")

    def failure(self, sender=None, task_id=None, exception=None, **kwargs):
        try:
            span, ours = self._span(sender, task_id)
            if span is not None and ours and isinstance(exception, Exception):
                mark_failed(span, exception)  # the upstream instrumentation records failures itself
        except Exception:
            internal_error("celery task_failure")

    def postrun(self, task_id=None, task=None, **kwargs):
        try:
            self._span(task, task_id)
            entry = self._forget(self._running, task_id)
            span, token = entry if entry is not None else (None, None)
            if span is not None:
                try:
                    context.detach(token)
                finally:
                    span.end()
        except Exception:
            internal_error("celery task_postrun")


    def process_shutdown(self, **kwargs):
        """A prefork pool child is about to leave with os._exit(), which runs no exit handler:
        export the spans and measurements it still holds (bounded, mailscope.forks)."""
        try:
            from mailscope.forks import flush_providers

            flush_providers()
        except Exception:
            internal_error("celery worker_process_shutdown")


def queue_wait_histogram(meter_provider):
    """mailscope.queue.wait: the process-wide instrument, or one on the given meter provider."""
    from mailscope.metrics import QUEUE_WAIT_BUCKETS_S, instruments

    if meter_provider is None:
        return instruments().queue_wait
    return meter_provider.get_meter("mailscope", __version__).create_histogram(
        attr.METRIC_QUEUE_WAIT, unit="s", description="Time messages spent in the queue",
        explicit_bucket_boundaries_advisory=QUEUE_WAIT_BUCKETS_S,
    )


class CeleryHook:
    """Connects the signal handlers when the app imports celery (never imports it itself)."""

    def __init__(self, tracer_provider=None, meter_provider=None):
        self.telemetry = CeleryTelemetry(
            trace.get_tracer(__name__, __version__, tracer_provider), queue_wait_histogram(meter_provider)
        )
        self.active = True
        import wrapt

        wrapt.register_post_import_hook(self._on_import, "celery")

    def _on_import(self, _module) -> None:
        try:
            if self.active:
                from celery import signals
                from celery.app.base import Celery

                self.telemetry.connect(signals, Celery)
        except Exception:
            internal_error("celery connect")

    def stop(self) -> None:
        self.active = False
        try:
            self.telemetry.disconnect()
        except Exception:
            internal_error("celery disconnect")
