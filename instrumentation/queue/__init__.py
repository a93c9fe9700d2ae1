"""Redis list queues: `send`/`receive`/`process {queue}` spans, envelope propagation, queue metrics.

    opentelemetry-instrument python worker.py        # entry point mailscope_queue

or `QueueInstrumentor().instrument(tracer_provider=..., meter_provider=...)`.

Keys matching `MAILSCOPE_QUEUES` are queues. On them, for redis-py's sync and
asyncio clients and their pipelines:
- LPUSH/RPUSH/LPUSHX/RPUSHX -> `send {queue}` (PRODUCER);
- BRPOP/BLPOP/RPOP/LPOP/BLMOVE/LMOVE/RPOPLPUSH/BRPOPLPUSH/BLMPOP/LMPOP that return
  messages -> `receive {queue}` (CONSUMER), then an implicit `process {queue}`
  (CONSUMER) span covering what the thread or task does with them until its next
  consumer command. A pop that returns nothing (timeout, empty list) records no
  span; it does end the previous process span.
- With `MAILSCOPE_QUEUE_ENVELOPE=json`, JSON-object payloads carry trace context
  and enqueue time in a `_mailscope` member, removed again on receive.

Celery tasks (any broker) are queue operations too: see queue/celery.py.

`processing(queue, message)` marks exact processing boundaries (see its doc).
`strip_envelope(payload)` removes the envelope from a payload read some other way.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Collection

from opentelemetry import trace
from mailscope.instrumentation.common.base import MailscopeInstrumentor
from opentelemetry.instrumentation.utils import unwrap

from mailscope._safety import internal_error
from mailscope.config import settings
from mailscope.globs import GlobList
from mailscope.instrumentation.queue import envelope
from mailscope.instrumentation.queue import process
from mailscope.version import __version__
from mailscope.locks import module_lock

_instruments = ("redis >= 4.2.0",)

_active = None  # QueueTelemetry while instrumented
_gauges: dict = {}  # meter provider key -> (provider, instruments, QueueGauges)
_gauges_lock = module_lock()


def _gauges_for(meter_provider, globs, redis_url):
    """One set of observable gauges per meter provider, reconfigured on re-instrumentation."""
    from mailscope.instrumentation.queue.gauges import QueueGauges
    from mailscope.metrics import Instruments, instruments

    key = None if meter_provider is None else id(meter_provider)
    with _gauges_lock:
        found = _gauges.get(key)
        if found is not None:
            found[2].configure(globs, redis_url)
            return found[1], found[2]
        insts = instruments() if meter_provider is None else Instruments(
            meter=meter_provider.get_meter("mailscope", __version__)
        )
        gauges = QueueGauges(insts, globs, redis_url)
        _gauges[key] = (meter_provider, insts, gauges)
        return insts, gauges


def _targets(wrappers):
    """(module, 'Class.method', wrapper) for everything the instrumentor wraps."""
    from mailscope.instrumentation.queue.commands import CONSUMERS, LREM, PRODUCERS

    targets = [(spec.module, f"{spec.owner}.{spec.method}", wrappers.produce) for spec in PRODUCERS]
    targets += [(spec.module, f"{spec.owner}.{spec.method}", wrappers.consumer(spec)) for spec in CONSUMERS]
    targets.append((LREM[1], f"{LREM[2]}.{LREM[0]}", wrappers.lrem))
    targets += [
        ("redis.client", "Pipeline.execute", wrappers.execute),
        ("redis.asyncio.client", "Pipeline.execute", wrappers.execute),
        ("redis.client", "Redis.__init__", wrappers.created),
        ("redis.asyncio.client", "Redis.__init__", wrappers.created),
    ]
    return targets


class QueueInstrumentor(MailscopeInstrumentor):
    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs):
        global _active
        from mailscope.instrumentation.queue.celery import CeleryHook

        self._celery = CeleryHook(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        try:
            import redis  # noqa: F401
            import redis.asyncio.client  # noqa: F401
        except ImportError:
            return
        from wrapt import wrap_function_wrapper

        from mailscope.instrumentation.queue.telemetry import QueueTelemetry
        from mailscope.instrumentation.queue.wrappers import QueueWrappers

        config = settings()
        globs = GlobList(config.queues)
        tracer = trace.get_tracer(__name__, __version__, kwargs.get("tracer_provider"))
        insts, gauges = _gauges_for(kwargs.get("meter_provider"), globs, config.queue_redis_url)
        telemetry = QueueTelemetry(tracer, insts, globs, config.queue_envelope == "json", gauges)
        wrappers = QueueWrappers(telemetry)
        self._wrapped = []
        for module, name, wrapper in _targets(wrappers):
            try:
                wrap_function_wrapper(module, name, wrapper)
                self._wrapped.append((module, name))
            except (AttributeError, ImportError):
                internal_error(f"queue wrap {module}.{name}")
        self._gauges = gauges
        _active = telemetry

    def _uninstrument(self, **kwargs):
        global _active
        import importlib

        celery = getattr(self, "_celery", None)
        if celery is not None:
            celery.stop()

        for module, name in getattr(self, "_wrapped", ()):
            owner, method = name.split(".")
            unwrap(getattr(importlib.import_module(module), owner), method)
        self._wrapped = []
        gauges = getattr(self, "_gauges", None)
        if gauges is not None:
            gauges.shutdown()
        _active = None


def strip_envelope(payload):
    """`payload` without mailscope's envelope (unchanged when it has none)."""
    return envelope.strip(payload)[0]


def _split_message(message):
    """(value, rebuild) for a message or a BRPOP-style (key, message) pair."""
    if isinstance(message, (tuple, list)) and len(message) == 2 and isinstance(message[1], (bytes, str)):
        kind, key = type(message), message[0]
        return message[1], lambda value: kind((key, value))
    return message, lambda value: value


@contextmanager
def processing(queue, message):
    """Exact boundaries for processing one message: `with processing(queue, msg) as payload: ...`.

    `message` is what a pop returned: the message, or BRPOP's `(key, message)`.
    The block runs inside the `process {queue}` span of that message: the
    implicit span the receive started (adopted, so it now ends with the block,
    also when the message is handed to another thread) or, for a message read
    some other way, a new span parented to the producer's trace context from
    its envelope. An exception leaving the block marks the span failed and
    propagates unchanged. `payload` is the message with any envelope removed.
    Without an active instrumentor it only removes the envelope.
    """
    from mailscope.instrumentation.queue.commands import key_text

    value, rebuild = _split_message(message)
    payload, env = envelope.strip(value)
    name = key_text(queue)
    telemetry = _active

    def start_new():
        if telemetry is None:
            return None
        from mailscope.instrumentation.queue.telemetry import _creation

        creation = _creation(env) if env is not None else None
        if creation is None:
            recent = process.recent(name, payload)
            creation = recent.creation if recent is not None else None
        return telemetry.process_scope(name, [payload], [creation])

    result = rebuild(payload) if payload is not value else message
    with process.processing_scope(name, payload, start_new):
        yield result
