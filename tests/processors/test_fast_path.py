"""The pipeline's fast path: no draft for healthy spans, the same export as the draft path, no address out.

Spans come from the real SDK through the whole chain (`build_pipeline`). The
same spans go through a second pipeline whose fast path is switched off, and
both exports must agree. Addresses written late (just before the span ends,
after it started clean) must come out redacted whichever path the span takes.
"""

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, TraceFlags

from mailscope import attributes as attr
from mailscope.config import load_settings
from mailscope.processors import pipeline as pipeline_module
from mailscope.processors.chain import build_pipeline
from mailscope.processors.pipeline import EnrichingSpanProcessor

ADDRESS = "jane.doe@example.com"
MS = 1_000_000
ENV = {"MAILSCOPE_SLOW_THRESHOLDS": "slow-*=5"}


class Chain:
    def __init__(self, fast=True, env=ENV):
        self.pipeline = build_pipeline(load_settings(environ=dict(env)))
        if not fast:
            self.pipeline.quick_stages = None
        assert (self.pipeline.quick_stages is not None) == fast
        self.out = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(
            EnrichingSpanProcessor(self.pipeline, SimpleSpanProcessor(self.out), start_hooks=True)
        )
        self.tracer = self.provider.get_tracer("test")

    def spans(self):
        return {s.name: s for s in self.out.get_finished_spans()}

    def close(self):
        self.provider.shutdown()


@pytest.fixture
def chains():
    made = []

    def make(**kwargs):
        made.append(Chain(**kwargs))
        return made[-1]

    yield make
    for c in made:
        c.close()


def no_draft(monkeypatch):
    def refuse(span):
        raise AssertionError("the fast path made a draft")

    monkeypatch.setattr(pipeline_module, "SpanDraft", refuse)


def test_a_healthy_address_free_span_is_forwarded_as_is_without_a_draft(chains, monkeypatch):
    chain = chains()
    no_draft(monkeypatch)
    with chain.tracer.start_as_current_span("SELECT orders", attributes={"db.system": "sqlite", "n": 3}):
        pass
    (span,) = chain.out.get_finished_spans()
    assert dict(span.attributes) == {"db.system": "sqlite", "n": 3}


def test_an_operation_gets_its_memory_delta_on_the_fast_path(chains, monkeypatch):
    chain = chains()
    no_draft(monkeypatch)
    with chain.tracer.start_as_current_span(attr.SPAN_PERSONALIZE, attributes={attr.OPERATION: attr.OP_PERSONALIZE}):
        pass
    (span,) = chain.out.get_finished_spans()
    assert attr.MEMORY_RSS_DELTA in span.attributes and attr.MEMORY_RSS in span.attributes


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("late", ["attribute", "name", "array"])
@pytest.mark.parametrize("kind", ["plain", "operation", "slow"])
def test_an_address_written_late_is_redacted(chains, fast, late, kind):
    chain = chains(fast=fast)
    attributes = {attr.OPERATION: attr.OP_SEND} if kind == "operation" else {"job": 1}
    name = "slow-send" if kind == "slow" else "send-digest"
    span = chain.tracer.start_span(name, attributes=attributes, start_time=1_000 * MS)
    # everything above was clean when the span started; now, just before it ends:
    if late == "attribute":
        span.set_attribute("email.to", f"To: {ADDRESS}")
    elif late == "name":
        span.update_name(f"{name} to {ADDRESS}")
    else:
        span.set_attribute("email.cc", ("ops@example.org", "nobody"))
    span.end(end_time=1_000 * MS + (50 * MS if kind == "slow" else MS))
    (out,) = chain.out.get_finished_spans()
    exported = repr((out.name, dict(out.attributes)))
    assert ADDRESS not in exported and "ops@example.org" not in exported
    assert "<redacted>@example." in exported
    if kind == "slow":
        assert out.attributes[attr.SLOW] is True
    if kind == "operation":
        assert attr.MEMORY_RSS_DELTA in out.attributes


def test_a_link_holding_an_address_is_redacted(chains):
    chain = chains()
    linked = SpanContext(trace_id=7, span_id=9, is_remote=True, trace_flags=TraceFlags(1))
    with chain.tracer.start_as_current_span("consume", links=[Link(linked, {"from": ADDRESS})]):
        pass
    (out,) = chain.out.get_finished_spans()
    assert out.links[0].attributes["from"] == "<redacted>@example.com"


def run_mix(chain):
    """Spans of every kind the fast path decides about, with fixed times."""
    tracer = chain.tracer
    plan = [
        ("redis GET", {"db.system": "redis"}, 1),
        ("slow-report", {"rows": 5}, 40),  # over its 5 ms threshold
        ("slow-report", {"rows": 6}, 1),
        (attr.SPAN_SEND, {attr.OPERATION: attr.OP_SEND, attr.PROVIDER: "smtp"}, 2),
        ("render", {"note": "mail for x@y.org"}, 1),  # an address: the draft path
        ("encoded", {"q": "a%40b.example.com"}, 1),
        ("tags", {"list": ("a", "b")}, 1),
    ]
    for n, (name, attributes, ms) in enumerate(plan * 3):
        start = (1_000 + 100 * n) * MS
        span = tracer.start_span(name, attributes=attributes, start_time=start)
        span.end(end_time=start + ms * MS)
    failed = tracer.start_span("failing", attributes={"k": 1}, start_time=5_000 * MS)
    failed.record_exception(ValueError(f"bad {ADDRESS}"))
    failed.set_status(pipeline_module._ERROR)
    failed.end(end_time=5_001 * MS)


def exported(chain):
    rows = []
    for span in chain.out.get_finished_spans():
        attributes = dict(span.attributes)
        for key in (attr.MEMORY_RSS, attr.MEMORY_RSS_DELTA):  # readings differ between runs
            if key in attributes:
                attributes[key] = "measured"
        events = [(e.name, dict(e.attributes or {})) for e in span.events]
        rows.append((span.name, attributes, events, span.status.status_code, span.status.description))
    return rows


def test_the_fast_path_exports_what_the_draft_path_exports(chains):
    fast, slow = chains(fast=True), chains(fast=False)
    run_mix(fast)
    run_mix(slow)
    assert exported(fast) == exported(slow)
    assert any(row[1].get(attr.SLOW) for row in exported(fast))
    assert all("x@y.org" not in repr(row) and ADDRESS not in repr(row) for row in exported(fast))


def test_a_stage_without_a_fast_form_sends_every_span_through_the_draft(chains):
    from mailscope.processors.pipeline import Pipeline

    class Tagging:
        name = "tagging"

        def __call__(self, draft):
            draft.set_attribute("tagged", True)

    pipeline = Pipeline([*build_pipeline(load_settings(environ={})).stages[:-1], Tagging(),
                         build_pipeline(load_settings(environ={})).stages[-1]])
    assert pipeline.quick_stages is None
