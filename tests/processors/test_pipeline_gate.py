"""Stages whose fast form only acts on spans with one attribute (`quick_only_with`) are not
called on other spans, and every stage is still called in chain order when that cannot hold."""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailscope import attributes as attr
from mailscope.config import load_settings
from mailscope.processors.chain import build_pipeline
from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline


class Stage:
    def __init__(self, name, calls, gate=None):
        self.name = name
        self.calls = calls
        if gate is not None:
            self.quick_only_with = gate

    def __call__(self, draft):
        self.calls.append(self.name)

    def quick(self, span, name, attributes):
        self.calls.append(self.name)
        return {f"seen.{self.name}": True}


def run(pipeline, attributes):
    out = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(out), start_hooks=True))
    with provider.get_tracer("t").start_as_current_span("s", attributes=attributes):
        pass
    provider.shutdown()
    (span,) = out.get_finished_spans()
    return dict(span.attributes)


def test_trailing_gated_stages_run_only_on_spans_with_their_attribute():
    calls = []
    pipeline = Pipeline([Stage("a", calls), Stage("b", calls, gate="op"), Stage("c", calls, gate="op")])
    assert run(pipeline, {"x": 1}) == {"x": 1, "seen.a": True}
    assert calls == ["a"]
    calls.clear()
    assert run(pipeline, {"op": "send"}) == {"op": "send", "seen.a": True, "seen.b": True, "seen.c": True}
    assert calls == ["a", "b", "c"]


def test_a_gated_stage_before_an_ungated_one_or_another_gate_is_always_called():
    for stages in (
        lambda calls: [Stage("a", calls, gate="op"), Stage("b", calls)],
        lambda calls: [Stage("a", calls), Stage("b", calls, gate="op"), Stage("c", calls, gate="other")],
    ):
        calls = []
        pipeline = Pipeline(stages(calls))
        run(pipeline, {"x": 1})
        assert calls == [s.name for s in pipeline.stages]


def test_the_chain_skips_memory_and_operation_metrics_on_other_spans_unless_memory_spans_are_named():
    pipeline = build_pipeline(load_settings(environ={}))
    assert pipeline.quick_gate == attr.OPERATION
    assert [q.__self__.name for q in pipeline.quick_ungated] == ["slow"]
    assert attr.MEMORY_RSS_DELTA in run(pipeline, {attr.OPERATION: "send"})
    named = build_pipeline(load_settings(environ={"MAILSCOPE_MEMORY_SPANS": "s"}))
    assert attr.MEMORY_RSS_DELTA in run(named, {"x": 1})  # a named span that is not an operation
