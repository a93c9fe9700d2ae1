"""The memory stage's start hook as the SDK calls it: directly, as the processor's own on_start
(in front of the SDK's BatchSpanProcessor, whose on_start does nothing).

It runs for every span the process starts, so the wiring skips the processor's wrapper; the
stage then guards itself: a reading that fails costs that span's memory attributes, nothing else.
"""

import logging

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailscope import attributes as attr
from mailscope.config import load_settings
from mailscope.processors.chain import build_pipeline, build_stages
from mailscope.processors.memory import MemoryStage
from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline


class BrokenReader:
    def read(self):
        raise OSError("statm is gone")

    def close(self):
        pass


def wire(pipeline):
    out = InMemorySpanExporter()
    provider = TracerProvider()
    processor = EnrichingSpanProcessor(pipeline, BatchSpanProcessor(out), start_hooks=True)
    provider.add_span_processor(processor)
    return provider, processor, out


def test_the_sdk_calls_the_memory_start_hook_directly_and_it_still_measures():
    pipeline = build_pipeline(load_settings(environ={}))
    (memory,) = [s for s in pipeline.stages if isinstance(s, MemoryStage)]
    provider, processor, out = wire(pipeline)
    assert processor.on_start == memory.on_start
    with provider.get_tracer("t").start_as_current_span("op", attributes={attr.OPERATION: "send"}):
        pass
    provider.force_flush()
    (span,) = out.get_finished_spans()
    assert attr.MEMORY_RSS_DELTA in span.attributes
    provider.shutdown()


def test_a_failing_start_reading_is_swallowed_logged_and_costs_only_the_memory_attributes(caplog):
    config = load_settings(environ={})
    stages = [MemoryStage(config, reader=BrokenReader()) if isinstance(s, MemoryStage) else s for s in build_stages(config)]
    provider, processor, out = wire(Pipeline(stages))
    caplog.set_level(logging.ERROR)
    ran = []
    for _ in range(2):
        with provider.get_tracer("t").start_as_current_span("op", attributes={attr.OPERATION: "send"}):
            ran.append(True)
    assert ran == [True, True]
    provider.force_flush()
    spans = out.get_finished_spans()
    assert [s.name for s in spans] == ["op", "op"]
    assert all(attr.MEMORY_RSS_DELTA not in s.attributes for s in spans)
    assert sum("internal error" in r.getMessage() for r in caplog.records) == 1
    provider.shutdown()


def test_a_span_that_is_not_the_sdks_is_read_through_its_public_fields():
    from types import SimpleNamespace

    memory = MemoryStage(load_settings(environ={}))
    context = SimpleNamespace(span_id=7)
    memory.on_start(SimpleNamespace(name="x", attributes={"k": 1}, context=context))
    assert memory.open_spans() == 0  # not an operation
    span = SimpleNamespace(name="op", attributes={attr.OPERATION: "send"}, context=context)
    memory.on_start(span)
    assert memory.open_spans() == 1
    values = memory.quick(span, "op", None)
    assert set(values) == {attr.MEMORY_RSS_DELTA, attr.MEMORY_RSS} and memory.open_spans() == 0
