"""In-process setup for queue tests: the real SDK and mailscope pipeline, read back in memory.

`QueueHarness(settings...)` builds a TracerProvider whose spans go through
mailscope's enrichment pipeline into an InMemorySpanExporter, and a
MeterProvider with an InMemoryMetricReader, and instruments the queue
instrumentor with them. Spans come back as the SDK's ReadableSpans.
"""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailscope.config import reload_settings
from mailscope.instrumentation.queue import process as queue_process
from mailscope.instrumentation.queue import QueueInstrumentor
from mailscope.processors.chain import build_pipeline
from mailscope.processors.pipeline import EnrichingSpanProcessor


class QueueHarness:
    def __init__(self, tracer_provider=None, **setting_overrides):
        self.settings = reload_settings(**setting_overrides)
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(
            EnrichingSpanProcessor(build_pipeline(self.settings), SimpleSpanProcessor(self.exporter))
        )
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer = self.tracer_provider.get_tracer("app")
        self.instrument(tracer_provider)

    def instrument(self, tracer_provider=None) -> None:
        instrumentor = QueueInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        instrumentor.instrument(
            tracer_provider=tracer_provider or self.tracer_provider, meter_provider=self.meter_provider
        )

    def close(self) -> None:
        reset_process_state()
        instrumentor = QueueInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        reload_settings()

    # --- reading back ---------------------------------------------------------------
    def spans(self, name: str | None = None, prefix: str | None = None) -> list:
        spans = list(self.exporter.get_finished_spans())
        if name is not None:
            spans = [s for s in spans if s.name == name]
        if prefix is not None:
            spans = [s for s in spans if s.name.startswith(prefix)]
        return spans

    def clear(self) -> None:
        self.exporter.clear()

    def points(self, metric_name: str) -> list:
        """[(attributes, point)] of one metric from a fresh collection."""
        data = self.reader.get_metrics_data()
        found = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == metric_name:
                        found.extend((dict(p.attributes), p) for p in metric.data.data_points)
        return found

    def gauge(self, metric_name: str) -> dict:
        """{destination: value} of a gauge."""
        return {a.get("messaging.destination.name"): p.value for a, p in self.points(metric_name)}


def reset_process_state() -> None:
    """End this thread's implicit process span (detaching its context) and every other open one."""
    queue_process.end_current()
    queue_process.end_all()


def hexid(value: int) -> str:
    return format(value, "016x")
