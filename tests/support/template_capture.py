"""In-process capture for instrumentor tests: the real SDK, exporting to memory.

`Capture` owns a TracerProvider with an InMemorySpanExporter (synchronous
SimpleSpanProcessor, so a span is readable as soon as it ends) and a
MeterProvider with an InMemoryMetricReader; instrumentors get them through
`instrument(tracer_provider=..., meter_provider=...)`, as contrib tests do.
"""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON


class Capture:
    def __init__(self, sampled: bool = True):
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer = self.tracer_provider.get_tracer("tests.app")

    @property
    def providers(self) -> dict:
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def spans(self, name: str | None = None) -> list:
        found = list(self.exporter.get_finished_spans())
        return [s for s in found if name is None or s.name == name]

    def one(self, name: str):
        found = self.spans(name)
        assert len(found) == 1, [(s.name, dict(s.attributes)) for s in self.spans()]
        return found[0]

    def clear(self) -> None:
        self.exporter.clear()

    def counter_points(self, metric_name: str) -> dict:
        """{frozenset(attributes.items()): value} of a counter's cumulative points."""
        data = self.reader.get_metrics_data()
        points = {}
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != metric_name:
                        continue
                    for point in metric.data.data_points:
                        points[frozenset(point.attributes.items())] = point.value
        return points

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def exported_text(span) -> str:
    """Everything a span would export, as text: name, attributes, events, status."""
    parts = [span.name, repr(dict(span.attributes or {})), repr(span.status.description)]
    for event in span.events:
        parts.append(event.name)
        parts.append(repr(dict(event.attributes or {})))
    return "\n".join(parts)
