"""Memory deltas with the real SDK: spans that really allocate, which spans are measured, bounds."""

import os
import tracemalloc

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from mailscope import attributes as attr
from mailscope.config import load_settings
from mailscope.metrics import MEMORY_BUCKETS_BYTES
from mailscope.processors.memory import MemoryStage
from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline, StartProcessor
from mailscope.processors.rss import RssReader

MB = 1024 * 1024
OPERATION = {attr.OPERATION: attr.OP_PERSONALIZE}
PAGE = os.sysconf("SC_PAGE_SIZE")


def touched_bytearray(size):
    """`size` bytes that are really resident: every page written."""
    block = bytearray(size)
    for offset in range(0, size, PAGE):
        block[offset] = 1
    return block


class Harness:
    def __init__(self, env=None, **stage_kwargs):
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        histogram = self.meters.get_meter("test").create_histogram(
            attr.METRIC_MEMORY_DELTA, unit="By", explicit_bucket_boundaries_advisory=MEMORY_BUCKETS_BYTES
        )
        self.stage = MemoryStage(load_settings(environ=env or {}), histogram=histogram, **stage_kwargs)
        self.pipeline = Pipeline([self.stage])
        self.out = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(StartProcessor(self.pipeline))
        self.provider.add_span_processor(EnrichingSpanProcessor(self.pipeline, SimpleSpanProcessor(self.out)))
        self.tracer = self.provider.get_tracer("test")

    def operation(self, name):
        """A span that is a mailscope operation (the ones measured by default)."""
        return self.tracer.start_as_current_span(name, attributes=OPERATION)

    def spans(self):
        return {s.name: dict(s.attributes) for s in self.out.get_finished_spans()}

    def histogram_points(self):
        points = {}
        data = self.reader.get_metrics_data()  # None when nothing was recorded at all
        for rm in data.resource_metrics if data is not None else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == attr.METRIC_MEMORY_DELTA:
                        for p in metric.data.data_points:
                            points[p.attributes[attr.LABEL_SPAN_NAME]] = p
        return points

    def close(self):
        self.provider.shutdown()
        self.meters.shutdown()


@pytest.fixture
def harness():
    made = []

    def make(env=None, **kwargs):
        made.append(Harness(env, **kwargs))
        return made[-1]

    yield make
    for h in made:
        h.close()


def test_a_span_that_keeps_64_mb_shows_a_positive_delta_of_about_that_size(harness):
    h = harness()
    kept = []
    with h.operation("build-newsletter"):
        kept.append(touched_bytearray(64 * MB))
    with h.operation("idle"):
        pass
    spans = h.spans()
    grown = spans["build-newsletter"]
    assert 60 * MB <= grown[attr.MEMORY_RSS_DELTA] <= 72 * MB
    assert grown[attr.MEMORY_RSS] >= grown[attr.MEMORY_RSS_DELTA]
    assert abs(spans["idle"][attr.MEMORY_RSS_DELTA]) < 4 * MB
    assert attr.MEMORY_ALLOC_DELTA not in grown  # rss mode
    point = h.histogram_points()["build-newsletter"]
    assert point.count == 1 and point.sum == grown[attr.MEMORY_RSS_DELTA]
    assert h.stage.open_spans() == 0
    del kept


def test_spans_that_do_not_grow_rss_keep_their_signed_delta_but_are_not_recorded(harness, caplog):
    h = harness()
    block = [touched_bytearray(64 * MB)]
    with h.operation("release-cache"):
        block.clear()  # a large bytearray is its own mapping: freeing it returns the pages at once
    with h.operation("idle"):
        pass
    spans = h.spans()
    assert spans["release-cache"][attr.MEMORY_RSS_DELTA] <= -60 * MB
    assert attr.MEMORY_RSS_DELTA in spans["idle"]
    points = h.histogram_points()
    assert "release-cache" not in points  # OTel histograms take no negative values
    assert "idle" not in points or spans["idle"][attr.MEMORY_RSS_DELTA] > 0
    assert not [r for r in caplog.records if "non-negative" in r.getMessage()]


def test_default_spans_are_mailscope_operations_only(harness):
    h = harness()
    remote = SpanContext(trace_id=0x1234, span_id=0x99, is_remote=True, trace_flags=TraceFlags(1))
    with h.tracer.start_as_current_span("handle-request"):
        with h.tracer.start_as_current_span("redis GET"):
            pass
        with h.tracer.start_as_current_span(attr.SPAN_PERSONALIZE, attributes={attr.OPERATION: attr.OP_PERSONALIZE}):
            pass
    with h.tracer.start_as_current_span("process remote", context=trace.set_span_in_context(NonRecordingSpan(remote))):
        pass
    with h.tracer.start_as_current_span("process emails", attributes={attr.OPERATION: attr.OP_QUEUE_PROCESS}):
        pass
    spans = h.spans()
    assert attr.MEMORY_RSS_DELTA in spans[attr.SPAN_PERSONALIZE]
    assert attr.MEMORY_RSS_DELTA in spans["process emails"]  # a root operation
    assert attr.MEMORY_RSS_DELTA not in spans["handle-request"]  # local roots are no longer measured
    assert attr.MEMORY_RSS_DELTA not in spans["process remote"]
    assert attr.MEMORY_RSS_DELTA not in spans["redis GET"]
    assert h.stage.open_spans() == 0


def test_memory_spans_star_measures_every_span(harness):
    h = harness({"MAILSCOPE_MEMORY_SPANS": "*"})
    with h.tracer.start_as_current_span("handle-request"):
        with h.tracer.start_as_current_span("redis GET"):
            pass
    assert all(attr.MEMORY_RSS_DELTA in a for a in h.spans().values())


def test_memory_spans_globs_replace_the_default(harness):
    h = harness({"MAILSCOPE_MEMORY_SPANS": "redis *,email.send"})
    with h.tracer.start_as_current_span("handle-request"):
        with h.tracer.start_as_current_span("redis GET"):
            pass
        with h.tracer.start_as_current_span(attr.SPAN_PERSONALIZE, attributes={attr.OPERATION: attr.OP_PERSONALIZE}):
            pass
    spans = h.spans()
    assert [n for n, a in spans.items() if attr.MEMORY_RSS_DELTA in a] == ["redis GET"]


def test_histogram_labels_are_capped_by_max_tracked_names(harness):
    h = harness({"MAILSCOPE_MAX_TRACKED_NAMES": "2"})
    kept = []
    for name in ("a", "b", "c", "d"):
        with h.operation(name):
            # above glibc's largest mmap threshold (32 MB): fresh pages, so RSS really grows
            kept.append(touched_bytearray(36 * MB))
    spans = h.spans()
    assert all(spans[n][attr.MEMORY_RSS_DELTA] >= 30 * MB for n in "abcd")
    points = h.histogram_points()
    assert set(points) == {"a", "b", attr.LABEL_OVERFLOW}
    assert points[attr.LABEL_OVERFLOW].count == 2
    assert points[attr.LABEL_OVERFLOW].sum == spans["c"][attr.MEMORY_RSS_DELTA] + spans["d"][attr.MEMORY_RSS_DELTA]
    del kept


def test_tracemalloc_mode_adds_the_python_allocation_delta_and_starts_tracing(harness):
    was_tracing = tracemalloc.is_tracing()
    if was_tracing:  # pragma: no cover - only when the test run itself traces
        pytest.skip("tracemalloc already running")
    h = harness({"MAILSCOPE_MEMORY": "tracemalloc"})
    assert tracemalloc.is_tracing()
    kept = []
    with h.operation("render"):
        kept.append(b"x" * (8 * MB))
    with h.operation("render-and-free"):
        temporary = b"y" * (8 * MB)
        del temporary
    spans = h.spans()
    assert 8 * MB <= spans["render"][attr.MEMORY_ALLOC_DELTA] <= 8 * MB + 256 * 1024
    assert abs(spans["render-and-free"][attr.MEMORY_ALLOC_DELTA]) < 256 * 1024
    assert attr.MEMORY_RSS_DELTA in spans["render"]
    h.pipeline.shutdown()
    assert not tracemalloc.is_tracing()  # the stage stops what it started
    del kept


def test_start_readings_of_spans_that_never_end_are_bounded(harness):
    h = harness(max_open=10)
    abandoned = [h.tracer.start_span(f"never-ends-{i}", attributes=OPERATION) for i in range(50)]
    assert h.stage.open_spans() == 10
    abandoned[0].end()  # evicted long ago: no reading left, no attributes, no error
    abandoned[-1].end()  # still in the table
    spans = h.spans()
    assert attr.MEMORY_RSS_DELTA not in spans["never-ends-0"]
    assert attr.MEMORY_RSS_DELTA in spans["never-ends-49"]
    assert h.stage.open_spans() == 9


def test_off_leaves_spans_alone():
    from mailscope.processors.chain import build_pipeline

    pipeline = build_pipeline(load_settings(environ={"MAILSCOPE_MEMORY": "off"}))
    provider = TracerProvider()
    out = InMemorySpanExporter()
    provider.add_span_processor(StartProcessor(pipeline))
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(out)))
    with provider.get_tracer("t").start_as_current_span("root"):
        pass
    (span,) = out.get_finished_spans()
    assert not any(k.startswith("mailscope.memory") for k in span.attributes)
    provider.shutdown()


# --- the RSS reader ---------------------------------------------------------------
def test_statm_reader_agrees_with_psutil_and_falls_back_to_it_without_proc():
    import psutil

    statm = RssReader()
    fallback = RssReader(statm_path="/nonexistent/statm")
    assert statm.source == "statm" and fallback.source == "psutil"
    reference = psutil.Process().memory_info().rss
    for reading in (statm.read(), fallback.read()):
        assert abs(reading - reference) < 8 * MB
    kept = touched_bytearray(32 * MB)
    assert fallback.read() - reference >= 30 * MB
    assert statm.read() - reference >= 30 * MB
    del kept
    statm.close()


def test_reader_follows_the_process_across_fork():
    import psutil

    reader = RssReader()
    before = reader.read()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: allocate, then read through the inherited reader and through psutil
        try:
            os.close(read_end)
            child_before = psutil.Process().memory_info().rss
            kept = touched_bytearray(48 * MB)
            os.write(write_end, f"{reader.read()} {psutil.Process().memory_info().rss} {child_before}".encode())
            del kept
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_reader, child_psutil, child_before = map(int, pipe.read().split())
    os.waitpid(pid, 0)
    # the child really grew (measured against itself: after fork, how much of the
    # parent's resident memory the child counts depends on the kernel and the heap)
    assert child_psutil - child_before >= 30 * MB
    # a descriptor still bound to the parent's /proc entry would have reported the parent's size
    assert abs(child_reader - child_psutil) < 8 * MB
    assert reader.read() - before < 16 * MB  # the parent did not grow
    reader.close()
