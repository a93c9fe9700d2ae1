"""`mailscope.operation.duration` from the pipeline's fast path and from the draft path: the
same points, each operation span's duration in seconds under its operation's labels."""

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailscope import attributes as attr
from mailscope.histograms import HotHistogram
from mailscope.metrics import DURATION_BUCKETS_S
from mailscope.processors.operation_metrics import OperationMetricsStage
from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline

MS = 1_000_000
SPANS = [  # (name, attributes, duration ms)
    ("email.personalize", {attr.OPERATION: attr.OP_PERSONALIZE, attr.TEMPLATE_NAME: "welcome"}, 3),
    ("email.personalize", {attr.OPERATION: attr.OP_PERSONALIZE, attr.TEMPLATE_NAME: "welcome"}, 250),
    ("email.send", {attr.OPERATION: attr.OP_SEND, attr.PROVIDER: "smtp"}, 40),
    ("SELECT orders", {"db.system": "sqlite"}, 5),
]


def points(fast: bool):
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    stage = OperationMetricsStage()
    stage._histogram = HotHistogram(
        meters.get_meter("mailscope").create_histogram(attr.METRIC_OPERATION_DURATION, unit="s"), DURATION_BUCKETS_S
    )
    pipeline = Pipeline([stage])
    if not fast:
        pipeline.quick_stages = None
    provider = TracerProvider()
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(InMemorySpanExporter())))
    tracer = provider.get_tracer("t")
    for name, attributes, ms in SPANS:
        tracer.start_span(name, attributes=attributes, start_time=10 * MS).end(end_time=(10 + ms) * MS)
    found = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    found[tuple(sorted(p.attributes.items()))] = (p.count, round(p.sum, 9), p.min, p.max)
    meters.shutdown()
    provider.shutdown()
    return found


def test_the_fast_path_records_what_the_draft_path_records():
    fast = points(True)
    assert fast == points(False)
    personalize = tuple(sorted({
        attr.OPERATION: attr.OP_PERSONALIZE, attr.TEMPLATE_NAME: "welcome", attr.LABEL_OUTCOME: attr.OUTCOME_OK,
    }.items()))
    send = tuple(sorted({
        attr.OPERATION: attr.OP_SEND, attr.PROVIDER: "smtp", attr.LABEL_OUTCOME: attr.OUTCOME_OK,
    }.items()))
    assert fast == {personalize: (2, 0.253, 0.003, 0.25), send: (1, 0.04, 0.04, 0.04)}
