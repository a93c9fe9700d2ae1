"""In-process telemetry for SMTP instrumentation tests: the real SDK, mailscope's pipeline.

`smtp_telemetry` (a pytest fixture; import it into a test module) instruments
smtplib/aiosmtplib with an SDK TracerProvider whose spans go through mailscope's
enrichment Pipeline (the chain `build_stages` composes) into an
InMemorySpanExporter (`spans()`), and an SDK MeterProvider read by an
InMemoryMetricReader. A second exporter sees the spans exactly as the
instrumentor made them, before any stage ran (`raw_spans()`), so tests can tell
what the instrumentor itself produced from what the pipeline exported.
"""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailscope import attributes as attr
from mailscope.instrumentation.smtp import SMTPInstrumentor
from mailscope.processors.chain import build_pipeline
from mailscope.processors.pipeline import EnrichingSpanProcessor, StartProcessor


class CapturedTelemetry:
    def __init__(self):
        self.exporter = InMemorySpanExporter()
        self.raw = InMemorySpanExporter()
        self.pipeline = build_pipeline()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.raw))
        self.tracer_provider.add_span_processor(StartProcessor(self.pipeline))
        self.tracer_provider.add_span_processor(
            EnrichingSpanProcessor(self.pipeline, SimpleSpanProcessor(self.exporter))
        )
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.instrumentor = SMTPInstrumentor()
        self.instrumentor.instrument(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)
        self.tracer = self.tracer_provider.get_tracer("test.app")

    def spans(self, name: str | None = None) -> list:
        spans = self.exporter.get_finished_spans()
        return [s for s in spans if name is None or s.name == name]

    def raw_spans(self) -> list:
        return list(self.raw.get_finished_spans())

    def one(self, name: str):
        found = self.spans(name)
        assert len(found) == 1, [(s.name, dict(s.attributes)) for s in self.spans()]
        return found[0]

    def recipients(self) -> dict:
        """{outcome: total} of mailscope.recipients for provider smtp."""
        totals: dict = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != attr.METRIC_RECIPIENTS:
                        continue
                    for point in metric.data.data_points:
                        labels = dict(point.attributes)
                        assert labels[attr.PROVIDER] == "smtp", labels
                        totals[labels[attr.LABEL_OUTCOME]] = totals.get(labels[attr.LABEL_OUTCOME], 0) + point.value
        return totals

    def close(self) -> None:
        self.instrumentor.uninstrument()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def produced_text(span, exception_events: bool = False) -> str:
    """A span's name, attributes, events and status description as text (exception events optional)."""
    events = [
        {"name": e.name, "attributes": dict(e.attributes or {})}
        for e in span.events
        if exception_events or e.name != attr.EXCEPTION_EVENT
    ]
    return json.dumps(
        {"name": span.name, "attributes": dict(span.attributes or {}), "events": events,
         "status": span.status.description},
        default=str,
    )


def assert_no_addresses(captured: CapturedTelemetry, addresses) -> None:
    """The instrumentor put no address on its spans itself (exception events aside: their
    text is the app's exception, which the redaction stage scrubs), and nothing exported
    through the pipeline carries one, exception events included."""
    for span in captured.raw_spans():
        text = produced_text(span)
        for address in addresses:
            assert address not in text, ("instrumentor output", span.name, text)
    for span in captured.spans():
        text = produced_text(span, exception_events=True)
        for address in addresses:
            assert address not in text, ("exported", span.name, text)


def refusal_events(span) -> list[dict]:
    return [dict(e.attributes) for e in span.events if e.name == attr.EVENT_RECIPIENT_REFUSED]


@pytest.fixture
def smtp_telemetry():
    captured = CapturedTelemetry()
    try:
        yield captured
    finally:
        captured.close()
