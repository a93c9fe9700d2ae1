"""16 threads ending spans at once through the real SDK and the slow + memory stages."""

import logging
import sys
import threading

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailscope import attributes as attr
from mailscope.config import load_settings
from mailscope.metrics import MEMORY_BUCKETS_BYTES
from mailscope.processors.error_type import ErrorTypeStage
from mailscope.processors.memory import MemoryStage
from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline, StartProcessor
from mailscope.processors.slow import SlowStage

THREADS = 16
SPANS = 250
MS = 1_000_000


def metric_totals(reader):
    totals = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    value = p.count if hasattr(p, "bucket_counts") else p.value
                    totals[metric.name] = totals.get(metric.name, 0) + value
    return totals


def test_sixteen_threads_ending_spans_concurrently(caplog):
    caplog.set_level(logging.ERROR, logger="mailscope")
    config = load_settings(environ={
        "MAILSCOPE_SLOW_THRESHOLDS": "job=10",
        "MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES": "50",
        "MAILSCOPE_MAX_TRACKED_NAMES": "4",
        "MAILSCOPE_MEMORY_SPANS": "*",  # every span, not only mailscope operations
    })
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    meter = meters.get_meter("test")
    slow = SlowStage(config, generation=10**6, counter=meter.create_counter(attr.METRIC_SLOW_OPERATIONS))
    memory = MemoryStage(config, histogram=meter.create_histogram(
        attr.METRIC_MEMORY_DELTA, explicit_bucket_boundaries_advisory=MEMORY_BUCKETS_BYTES,
    ))
    pipeline = Pipeline([ErrorTypeStage(), slow, memory])
    out = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(StartProcessor(pipeline))
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(out)))
    tracer = provider.get_tracer("threads")
    barrier = threading.Barrier(THREADS)
    failures = []

    def work(thread_index):
        try:
            barrier.wait()
            for i in range(SPANS):
                # even threads share one name (every 5th span over its 10 ms limit); odd threads churn
                # through 8 names so the 4-name table evicts while others read and write it
                name = "job" if thread_index % 2 == 0 else f"name-{i % 8}"
                duration = 20 if (thread_index % 2 == 0 and i % 5 == 0) else 1
                start = 1_000 * MS + i * 100 * MS
                span = tracer.start_span(name, start_time=start)
                span.end(end_time=start + duration * MS)
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so stages really interleave
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(previous)

    assert failures == []
    assert [r.getMessage() for r in caplog.records] == []  # no stage raised
    spans = out.get_finished_spans()
    assert len(spans) == THREADS * SPANS
    slow_spans = [s for s in spans if s.attributes.get(attr.SLOW)]
    assert len(slow_spans) == (THREADS // 2) * (SPANS // 5)
    assert {s.name for s in slow_spans} == {"job"}
    assert all(attr.MEMORY_RSS_DELTA in s.attributes for s in spans)  # every span measured
    assert memory.open_spans() == 0  # every start reading was consumed
    assert slow.tracked_names() <= 4
    totals = metric_totals(reader)
    assert totals[attr.METRIC_SLOW_OPERATIONS] == len(slow_spans)
    # the histogram holds exactly the spans whose RSS grew
    assert totals.get(attr.METRIC_MEMORY_DELTA, 0) == sum(s.attributes[attr.MEMORY_RSS_DELTA] > 0 for s in spans)
    provider.shutdown()
    meters.shutdown()


def test_one_name_learned_from_sixteen_threads_loses_no_sample():
    config = load_settings(environ={"MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES": "50"})
    slow = SlowStage(config, generation=10**6)
    provider = TracerProvider()
    provider.add_span_processor(EnrichingSpanProcessor(Pipeline([slow]), None))
    tracer = provider.get_tracer("threads")
    barrier = threading.Barrier(THREADS)

    def work(thread_index):
        barrier.wait()
        for i in range(SPANS):
            start = 1_000 * MS
            span = tracer.start_span("q", start_time=start)
            # 10, 9, ..., 1 ms: every thread starts with its longest, so whatever the interleaving at least a tenth of
            # what the baseline has learned is 10 ms and its p95 is 10 ms. Rising durations (1, 2, ..., 10) let an
            # interleaving where each thread had spent only 1-3 ms teach a p95 of 3 ms, which made a 10 ms span an
            # outlier: the test failed once in a full run.
            span.end(end_time=start + (10 - (i % 10)) * MS)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(previous)
    baseline = slow.baseline("q")
    # one generation holds everything: every one of the 4000 samples was counted exactly once
    assert baseline.samples() == THREADS * SPANS
    baseline.flush()
    assert baseline._current.total + baseline._outliers.total == THREADS * SPANS
    assert sum(baseline._current.counts.values()) == baseline._current.total
    assert baseline._outliers.total == 0  # 1..10 ms never exceeds 3 x p95 (10 ms)
    provider.shutdown()
