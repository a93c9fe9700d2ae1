"""A span exporter wrapper that counts what could not be exported and says so once.

When the collector is down, the SDK's exporters log every failed batch (a retry
warning per attempt, then an error per batch): a service exporting every few
seconds fills its log with them for as long as the outage lasts. `GuardedExporter`
sits between the BatchSpanProcessor and the real exporter and

- counts the spans of every batch that failed (`dropped`, `failed_batches`);
- logs one warning when export starts failing (naming the exporter, not the data)
  and one line when it works again, with the number of spans lost in between;
- while an outage lasts, lets each distinct message of the exporter's own logger
  through once (`RepeatFilter`), so retry/timeout lines do not repeat per batch;
- turns an exception raised by the exporter into a failed export (the
  BatchSpanProcessor would log a traceback per batch), so nothing reaches the app
  or the export thread.

Queue-full drops inside the BatchSpanProcessor happen before the exporter. The SDK
lets its `Queue full, dropping span.` warning through once per 20-second window of
the wall clock (its DuplicateFilter), so a burst that straddles a window's edge logs
it twice and a sustained overflow three times a minute. `QueueFullFilter`, installed
on that logger once per process, lets it through once per signal per 10 minutes.
"""

from __future__ import annotations

import logging
import re
import time

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from mailscope._safety import internal_error
from mailscope.locks import module_lock, owned_lock

logger = logging.getLogger("mailscope")

# loggers the SDK's OTLP span exporters log their per-batch failures through, besides the
# exporter class's own module logger
_SHARED_EXPORTER_LOGGERS = ("opentelemetry.exporter.otlp.proto.grpc.exporter",)
_MAX_REPEAT_KEYS = 64
_DIGITS = re.compile(r"\d+(?:\.\d+)?")


class RepeatFilter(logging.Filter):
    """Remembers warning-or-worse messages (numbers ignored); while `active`, each passes once.

    The exporter logs a failing batch before the guard learns of the failure, so the
    messages of that first batch are remembered even before the outage is declared.
    `reset()` (after a successful export) starts afresh."""

    def __init__(self):
        super().__init__()
        self.active = False
        self._seen: set[str] = set()
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        try:
            key = _DIGITS.sub("#", str(record.msg))[:200]
        except Exception:
            return True
        if key in self._seen and self.active:
            self.suppressed += 1
            return False
        if len(self._seen) < _MAX_REPEAT_KEYS:
            self._seen.add(key)
        return True

    def reset(self) -> None:
        self._seen = set()
        self.active = False


class GuardedExporter(SpanExporter):
    def __init__(self, exporter: SpanExporter):
        self.exporter = exporter
        self.name = type(exporter).__name__
        self.dropped = 0
        self.failed_batches = 0
        self.exported = 0
        self.outages = 0
        self._failing = False
        self._lock = owned_lock(self)
        self.repeat_filter = RepeatFilter()
        self._loggers = []
        for name in (type(exporter).__module__, *_SHARED_EXPORTER_LOGGERS):
            target = logging.getLogger(name)
            target.addFilter(self.repeat_filter)
            self._loggers.append(target)

    def export(self, spans) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception:
            internal_error(f"span exporter {self.name}")
            result = SpanExportResult.FAILURE
        try:
            self._account(result, len(spans))
        except Exception:
            internal_error("export accounting")
        return result

    def _account(self, result, count: int) -> None:
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.exported += count
                if not self._failing:
                    if self.repeat_filter._seen:  # a transient problem that resolved itself
                        self.repeat_filter.reset()
                    return
                self._failing = False
                lost = self.dropped
                self.repeat_filter.reset()
            else:
                self.dropped += count
                self.failed_batches += 1
                if self._failing:
                    return
                self._failing = True
                self.outages += 1
                self.repeat_filter.active = True
                lost = None
        if lost is None:
            logger.warning(
                "mailscope: span export through %s is failing; spans that cannot be exported are "
                "dropped and counted, and repeated exporter messages are not logged until it works again",
                self.name,
            )
        else:
            logger.warning("mailscope: span export through %s works again; %d spans dropped so far", self.name, lost)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)

    def shutdown(self) -> None:
        try:
            self.exporter.shutdown()
        finally:
            if self.dropped:
                try:
                    logger.warning(
                        "mailscope: %d spans in %d batches could not be exported through %s",
                        self.dropped, self.failed_batches, self.name,
                    )
                except Exception:
                    pass
            for target in self._loggers:
                target.removeFilter(self.repeat_filter)


# the logger of the SDK's BatchProcessor (spans and log records), which logs `Queue full, dropping %s.`
_QUEUE_LOGGER = "opentelemetry.sdk._shared_internal"
QUEUE_FULL_INTERVAL_S = 600.0
_MAX_QUEUE_KEYS = 8


class QueueFullFilter(logging.Filter):
    """The SDK's queue-full warning at most once per `interval` (monotonic clock) for each signal.

    Never blocks the thread that logs (the app's, in a span's end): a record that arrives while
    another thread is deciding is dropped as a repeat."""

    def __init__(self, interval: float = QUEUE_FULL_INTERVAL_S, clock=time.monotonic):
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._next: dict = {}
        self._lock = owned_lock(self)
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if not isinstance(msg, str) or not msg.startswith("Queue full"):
            return True
        if not self._lock.acquire(blocking=False):
            self.suppressed += 1
            return False
        try:
            key = str(record.args)[:64]
            now = self._clock()
            due = self._next.get(key)
            if due is not None and now < due:
                self.suppressed += 1
                return False
            if due is None and len(self._next) >= _MAX_QUEUE_KEYS:
                return True
            self._next[key] = now + self.interval
            return True
        except Exception:
            return True
        finally:
            self._lock.release()


_install_lock = module_lock()
_queue_full_filter: QueueFullFilter | None = None


def install_queue_full_filter() -> QueueFullFilter:
    """Adds the filter to the SDK's batch-processor logger, once per process."""
    global _queue_full_filter
    with _install_lock:
        if _queue_full_filter is None:
            _queue_full_filter = QueueFullFilter()
            logging.getLogger(_QUEUE_LOGGER).addFilter(_queue_full_filter)
        return _queue_full_filter
