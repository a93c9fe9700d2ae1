"""The exporter wrapper and the batch-processor fallback, in process.

GuardedExporter: a failing or raising exporter is counted, logged once per outage
(start, recovery) and once at shutdown, never raises; the exporter's own repeated
warnings are let through once per outage. batch_processor: batch settings the SDK
refuses become one warning and the nearest valid BatchSpanProcessor.
"""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from mailscope.exporters.export_guard import GuardedExporter
from mailscope.exporters.wiring import batch_processor

exporter_log = logging.getLogger(__name__)  # this module's logger plays the exporter's own


class SwitchableExporter(SpanExporter):
    """Answers with `mode`: "ok", "fail" (logging a per-batch warning like the SDK's), or "raise"."""

    def __init__(self):
        self.mode = "ok"
        self.received = 0

    def export(self, spans):
        if self.mode == "raise":
            raise ConnectionError("exporter blew up")
        if self.mode == "fail":
            exporter_log.warning("Failed to export span batch code: 503, reason: %s", "unavailable")
            return SpanExportResult.FAILURE
        self.received += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


def _spans(n):
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    out = []
    for i in range(n):
        span = tracer.start_span(f"s{i}")
        span.end()
        out.append(span)
    return out


def test_outages_are_counted_and_logged_once(caplog):
    inner = SwitchableExporter()
    guard = GuardedExporter(inner)
    batch = _spans(4)
    with caplog.at_level(logging.WARNING):
        assert guard.export(batch) is SpanExportResult.SUCCESS
        inner.mode = "fail"
        for _ in range(5):
            assert guard.export(batch) is SpanExportResult.FAILURE
        inner.mode = "raise"
        assert guard.export(batch) is SpanExportResult.FAILURE  # an exception never escapes
        inner.mode = "ok"
        assert guard.export(batch) is SpanExportResult.SUCCESS
        inner.mode = "fail"
        guard.export(batch)  # a second outage is announced again
        guard.export(batch)
        guard.shutdown()
    messages = [r.getMessage() for r in caplog.records]
    assert guard.dropped == 4 * 8 and guard.failed_batches == 8 and guard.outages == 2
    assert sum("is failing" in m for m in messages) == 2
    assert sum("works again; 24 spans dropped so far" in m for m in messages) == 1
    assert sum("32 spans in 8 batches could not be exported" in m for m in messages) == 1
    # the exporter's own per-batch warning: once per outage, not once per failed batch
    assert sum(m.startswith("Failed to export span batch") for m in messages) == 2
    assert sum("internal error in span exporter" in m for m in messages) == 1


@pytest.mark.parametrize(
    "settings,expected",
    [
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "100"}, (100, 100)),  # queue below the default batch of 512
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "300", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "400"}, (300, 300)),
        ({"OTEL_BSP_SCHEDULE_DELAY": "0"}, (2048, 512)),  # no usable reading: the SDK defaults
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "-5"}, (2048, 512)),
    ],
)
def test_batch_settings_the_sdk_refuses_become_one_warning(monkeypatch, caplog, settings, expected):
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    with caplog.at_level(logging.WARNING, logger="mailscope"):
        processor = batch_processor(SwitchableExporter())
    try:
        inner = processor._batch_processor
        assert (inner._queue.maxlen, inner._max_export_batch_size) == expected
        warnings = [r.getMessage() for r in caplog.records if "span batch settings are invalid" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        processor.shutdown()


def test_valid_batch_settings_are_left_alone(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4096")
    with caplog.at_level(logging.WARNING, logger="mailscope"):
        processor = batch_processor(SwitchableExporter())
    try:
        assert processor._batch_processor._queue.maxlen == 4096
        assert processor._batch_processor._max_export_batch_size == 512
        assert not caplog.records
    finally:
        processor.shutdown()


# --- the SDK's queue-full warning -------------------------------------------------------------
def _record(signal="span"):
    return logging.LogRecord("opentelemetry.sdk._shared_internal", logging.WARNING, __file__, 1,
                             "Queue full, dropping %s.", (signal,), None)


def test_queue_full_is_logged_once_per_interval_per_signal():
    from mailscope.exporters.export_guard import QueueFullFilter

    now = [1000.0]
    queue_filter = QueueFullFilter(interval=600.0, clock=lambda: now[0])
    assert queue_filter.filter(_record())
    now[0] += 25.0  # a new 20-second window of the SDK's own DuplicateFilter: it would let this through
    assert not queue_filter.filter(_record())
    assert queue_filter.filter(_record("log record"))  # the other signal's overflow is news
    now[0] += 600.0
    assert queue_filter.filter(_record())  # a later overflow is logged again
    other = logging.LogRecord("x", logging.WARNING, __file__, 1, "Exception while exporting %s.", ("span",), None)
    assert queue_filter.filter(other) and queue_filter.filter(other)  # other messages are not its business
    assert queue_filter.suppressed == 1


def test_the_export_wiring_puts_the_filter_on_the_sdk_batch_logger():
    from mailscope.exporters.export_guard import QueueFullFilter
    from mailscope.exporters.wiring import enriching_batch_processor
    from mailscope.processors.pipeline import Pipeline

    sdk_logger = logging.getLogger("opentelemetry.sdk._shared_internal")
    processor = enriching_batch_processor(Pipeline([]))(SwitchableExporter())
    try:
        filters = [f for f in sdk_logger.filters if isinstance(f, QueueFullFilter)]
        assert len(filters) == 1
        enriching_batch_processor(Pipeline([]))(SwitchableExporter()).shutdown()
        assert len([f for f in sdk_logger.filters if isinstance(f, QueueFullFilter)]) == 1  # once per process
    finally:
        processor.shutdown()
