"""Export wiring: the processor factory the SDK configurator receives.

`enriching_batch_processor(pipeline)` returns the `export_span_processor`
factory: each exporter is wrapped in a GuardedExporter (drops counted, an
outage logged once), gets a BatchSpanProcessor, and that is wrapped by the
enrichment pipeline, so what leaves the process is the enriched (and redacted)
copy. The first wrapper made for a pipeline also runs the stages' start hooks.

A batch setting the SDK refuses (OTEL_BSP_MAX_QUEUE_SIZE below the export batch
size, a zero or negative size or delay) would make the SDK raise while it is set
up and leave the app without any telemetry; here it is one warning and the
nearest valid batch processor instead.
"""

from __future__ import annotations

from opentelemetry.sdk.trace.export import BatchSpanProcessor

from mailscope._safety import log_once
from mailscope.exporters import export_locks
from mailscope.exporters.export_guard import GuardedExporter, install_queue_full_filter
from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline


def batch_processor(exporter) -> BatchSpanProcessor:
    try:
        return BatchSpanProcessor(exporter)
    except ValueError as exc:
        problem = str(exc)
    try:  # the SDK's own readings of the OTEL_BSP_* variables (invalid ones fall back to defaults)
        queue = BatchSpanProcessor._default_max_queue_size()
        batch = BatchSpanProcessor._default_max_export_batch_size()
        delay = BatchSpanProcessor._default_schedule_delay_millis()
    except Exception:
        queue, batch, delay = 2048, 512, 5000
    candidates = (
        {"max_export_batch_size": min(batch, queue)} if queue > 0 and batch > 0 and delay > 0 else None,
        {"max_queue_size": 2048, "schedule_delay_millis": 5000, "max_export_batch_size": 512},
    )
    for kwargs in candidates:
        if kwargs is None:
            continue
        try:
            processor = BatchSpanProcessor(exporter, **kwargs)
        except ValueError:
            continue
        log_once(
            "bsp:invalid",
            "mailscope: the span batch settings are invalid (%s); using %s instead",
            problem,
            ", ".join(f"{k}={v}" for k, v in kwargs.items()),
        )
        return processor
    raise ValueError(problem)


def enriching_batch_processor(pipeline: Pipeline):
    def factory(exporter):
        export_locks.guard_exporter(exporter)
        install_queue_full_filter()
        return EnrichingSpanProcessor(
            pipeline, batch_processor(GuardedExporter(exporter)), start_hooks=pipeline.claim_start_hooks()
        )

    return factory
