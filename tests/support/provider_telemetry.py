"""In-process telemetry for provider instrumentation tests: the real SDK, mailscope's pipeline.

`CapturedProviders(upstream=(...), upstream_first=...)` instruments the HTTP email
providers with an SDK TracerProvider whose spans go through the enrichment
Pipeline (the chain `build_stages` composes) into an InMemorySpanExporter
(`spans()`); a second exporter sees the spans before any stage ran
(`raw_spans()`). Metrics go to an InMemoryMetricReader. `upstream` names
opentelemetry-python-contrib instrumentors to install with the same providers
(`botocore`, `requests`, `httpx`), before or after mailscope's, so tests can see
how the spans nest either way. `close()` takes everything off again, last
installed first, so each wrapper is removed from the top of its chain.
"""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailscope import attributes as attr
from mailscope.instrumentation.providers import ProviderInstrumentor
from mailscope.processors.chain import build_pipeline
from mailscope.processors.pipeline import EnrichingSpanProcessor, StartProcessor


def upstream_instrumentor(name: str):
    if name == "botocore":
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

        return BotocoreInstrumentor()
    if name == "requests":
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        return RequestsInstrumentor()
    if name == "httpx":
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        return HTTPXClientInstrumentor()
    raise ValueError(name)


class CapturedProviders:
    def __init__(self, upstream=(), upstream_first: bool = True):
        self.exporter = InMemorySpanExporter()
        self.raw = InMemorySpanExporter()
        self.pipeline = build_pipeline()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.raw))
        self.tracer_provider.add_span_processor(StartProcessor(self.pipeline))
        self.tracer_provider.add_span_processor(EnrichingSpanProcessor(self.pipeline, SimpleSpanProcessor(self.exporter)))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        ours = ProviderInstrumentor()
        others = [upstream_instrumentor(name) for name in upstream]
        self.installed = others + [ours] if upstream_first else [ours] + others
        for instrumentor in self.installed:
            instrumentor.instrument(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)
        self.tracer = self.tracer_provider.get_tracer("test.app")

    def spans(self, name: str | None = None) -> list:
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]

    def raw_spans(self) -> list:
        return list(self.raw.get_finished_spans())

    def sends(self) -> list:
        return self.spans(attr.SPAN_SEND)

    def one_send(self):
        found = self.sends()
        assert len(found) == 1, [(s.name, dict(s.attributes)) for s in self.spans()]
        return found[0]

    def clear(self) -> None:
        self.exporter.clear()
        self.raw.clear()

    def metric_points(self, name: str) -> list[tuple[dict, object]]:
        """(labels, point) of every data point of metric `name`."""
        found = []
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend((dict(p.attributes), p) for p in metric.data.data_points)
        return found

    def recipients(self, provider: str) -> dict:
        """{outcome: total} of mailscope.recipients for `provider`."""
        totals: dict = {}
        for labels, point in self.metric_points(attr.METRIC_RECIPIENTS):
            if labels[attr.PROVIDER] == provider:
                totals[labels[attr.LABEL_OUTCOME]] = totals.get(labels[attr.LABEL_OUTCOME], 0) + point.value
        return totals

    def close(self) -> None:
        for instrumentor in reversed(self.installed):
            instrumentor.uninstrument()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def exception_message(span) -> str | None:
    for event in span.events:
        if event.name == attr.EXCEPTION_EVENT:
            return event.attributes.get(attr.EXCEPTION_MESSAGE)
    return None


def refusal_domains(span) -> list:
    return sorted(e.attributes.get(attr.RECIPIENT_DOMAIN) for e in span.events if e.name == attr.EVENT_RECIPIENT_REFUSED)
