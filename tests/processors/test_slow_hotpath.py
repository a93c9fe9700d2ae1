"""The hot-path shortcuts taken for the slow/memory stages keep the pipeline's behaviour."""

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from mailscope.processors.draft import SpanDraft, make_event, plain_attributes
from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline


def finished_sdk_span():
    """A span exactly as the SDK hands it to on_end (a fresh ReadableSpan with BoundedAttributes)."""
    out = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(out))
    with provider.get_tracer("scope", "1.2").start_as_current_span("op", attributes={"k": 1, "s": "v"}) as span:
        span.add_event("e", {"n": 1})
    (finished,) = out.get_finished_spans()
    return finished


def public_view(span):
    return {
        "name": span.name, "context": span.context, "parent": span.parent, "resource": span.resource,
        "attributes": dict(span.attributes), "events": [(e.name, dict(e.attributes), e.timestamp) for e in span.events],
        "links": list(span.links), "kind": span.kind, "status": (span.status.status_code, span.status.description),
        "start": span.start_time, "end": span.end_time, "scope": span.instrumentation_scope,
    }


def test_the_fast_clone_equals_a_constructed_copy_and_leaves_the_original_alone():
    span = finished_sdk_span()
    before = public_view(span)
    draft = SpanDraft(span)
    draft.set_attribute("added", True)
    draft.set_name("renamed")
    draft.set_status(Status(StatusCode.ERROR, "bad"))
    draft.replace_events([make_event("other", {"x": 2}, 5)])
    clone = draft.build()
    assert type(clone) is ReadableSpan and clone is not span
    expected = dict(before)
    expected.update(
        name="renamed", attributes={"k": 1, "s": "v", "added": True}, events=[("other", {"x": 2}, 5)],
        status=(StatusCode.ERROR, "bad"),
    )
    assert public_view(clone) == expected
    assert public_view(span) == before  # the SDK's span is untouched
    # the constructor path (used for other span types) gives the same result
    class Other(ReadableSpan):
        pass

    other = Other(name=span.name, context=span.context, parent=span.parent, resource=span.resource,
                  attributes=span.attributes, events=span.events, links=span.links, kind=span.kind,
                  status=span.status, start_time=span.start_time, end_time=span.end_time,
                  instrumentation_scope=span.instrumentation_scope)
    slow = SpanDraft(other)
    slow.set_attribute("added", True)
    slow.set_name("renamed")
    slow.set_status(Status(StatusCode.ERROR, "bad"))
    slow.replace_events([make_event("other", {"x": 2}, 5)])
    assert public_view(slow.build()) == expected


def test_plain_attributes_is_a_private_plain_dict():
    span = finished_sdk_span()
    got = plain_attributes(span)
    assert type(got) is dict and got == {"k": 1, "s": "v"}
    got["k"] = 2
    assert span.attributes["k"] == 1
    assert plain_attributes(ReadableSpan("x")) == {}


def test_the_draft_reads_through_one_view_and_writes_without_touching_it_for_others():
    span = finished_sdk_span()
    draft = SpanDraft(span)
    view = draft.attributes
    assert view == {"k": 1, "s": "v"} and "missing" not in view
    draft.set_attribute("added", 1)
    assert draft.attributes == {"k": 1, "s": "v", "added": 1}
    assert dict(span.attributes) == {"k": 1, "s": "v"}


class Marking:
    name = "marking"

    def __init__(self):
        self.calls = 0

    def __call__(self, draft):
        self.calls += 1
        draft.set_attribute("n", self.calls)


def test_with_one_exporter_each_span_is_enriched_once_and_results_are_not_shared():
    stage = Marking()
    pipeline = Pipeline([stage])
    out = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(out)))
    tracer = provider.get_tracer("t")
    for _ in range(3):
        with tracer.start_as_current_span("x"):
            pass
    assert pipeline.wrappers == 1
    assert [s.attributes["n"] for s in out.get_finished_spans()] == [1, 2, 3]
