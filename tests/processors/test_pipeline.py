"""The enrichment pipeline with the real SDK: copy-on-write, once per span, stage isolation."""

import logging

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailscope import attributes as attr
from mailscope.processors.chain import build_pipeline
from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline, StartProcessor


def provider_with(pipeline, exporters=1):
    provider = TracerProvider()
    provider.add_span_processor(StartProcessor(pipeline))
    outs = []
    for _ in range(exporters):
        out = InMemorySpanExporter()
        provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(out)))
        outs.append(out)
    return provider, outs


class Counting:
    name = "counting"

    def __init__(self):
        self.calls = 0
        self.started = 0

    def on_start(self, span):
        self.started += 1

    def __call__(self, draft):
        self.calls += 1
        if draft.name == "mark-me":
            draft.set_attribute("test.marked", True)


def test_unchanged_spans_are_forwarded_as_is_and_changed_ones_as_copies():
    stage = Counting()
    pipeline = Pipeline([stage])
    provider, (out,) = provider_with(pipeline)
    given = []
    original_enrich = pipeline.enrich
    pipeline.enrich = lambda span: given.append(span) or original_enrich(span)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("plain"):
        pass
    with tracer.start_as_current_span("mark-me", attributes={"k": 1}) as live:
        pass
    plain, marked = out.get_finished_spans()
    assert plain is given[0]  # nothing changed: no copy made
    assert marked is not given[1]
    assert dict(marked.attributes) == {"k": 1, "test.marked": True}
    assert dict(given[1].attributes) == {"k": 1}  # the SDK's span stays untouched
    assert "test.marked" not in live.attributes
    assert marked.context == live.context and marked.end_time == live.end_time
    assert marked.instrumentation_scope == live.instrumentation_scope
    assert stage.started == 2


def test_enrichment_runs_once_per_span_with_several_exporters():
    stage = Counting()
    provider, outs = provider_with(Pipeline([stage]), exporters=3)
    tracer = provider.get_tracer("t")
    for _ in range(5):
        with tracer.start_as_current_span("mark-me"):
            pass
    assert stage.calls == 5 and stage.started == 5
    for out in outs:
        assert [s.attributes["test.marked"] for s in out.get_finished_spans()] == [True] * 5


class Broken:
    name = "broken"

    def __call__(self, draft):
        raise RuntimeError("bug in a stage")


class Redactor:
    name = "redactor"
    privacy_critical = True

    def __call__(self, draft):
        raise RuntimeError("bug in redaction")


def test_a_failing_stage_is_logged_once_and_the_chain_goes_on(caplog):
    caplog.set_level(logging.ERROR, logger="mailscope")
    after = Counting()
    provider, (out,) = provider_with(Pipeline([Broken(), after]))
    tracer = provider.get_tracer("t")
    for _ in range(4):
        with tracer.start_as_current_span("mark-me"):
            pass
    assert after.calls == 4
    assert len(out.get_finished_spans()) == 4
    assert len([r for r in caplog.records if "stage broken" in r.getMessage()]) == 1


def test_a_failing_privacy_stage_drops_the_span_instead_of_exporting_it_unredacted():
    provider, (out,) = provider_with(Pipeline([Redactor()]))
    with provider.get_tracer("t").start_as_current_span("x"):
        pass
    assert out.get_finished_spans() == ()


def test_foundation_chain_fills_error_type_only_on_failures():
    provider, (out,) = provider_with(build_pipeline())
    tracer = provider.get_tracer("t")
    try:
        with tracer.start_as_current_span("fails"):
            raise TimeoutError("slow server")
    except TimeoutError:
        pass
    with tracer.start_as_current_span("fine"):
        pass
    from opentelemetry.trace import Status, StatusCode

    with tracer.start_as_current_span("status-only") as span:
        span.set_status(Status(StatusCode.ERROR, "bad"))
    with tracer.start_as_current_span("typed", attributes={attr.ERROR_TYPE: "550"}) as span:
        span.set_status(Status(StatusCode.ERROR))
    got = {s.name: s.attributes.get(attr.ERROR_TYPE) for s in out.get_finished_spans()}
    assert got == {"fails": "TimeoutError", "fine": None, "status-only": "_OTHER", "typed": "550"}


def test_mailscope_own_logs_mask_addresses_in_messages_and_tracebacks(caplog):
    from mailscope._safety import internal_error, log_once

    caplog.set_level(logging.WARNING, logger="mailscope")
    log_once("t1", "mailscope: cannot parse %r", "Jane <jane.doe@example.org>")
    try:
        raise ValueError("recipient bob.smith@example.net refused")
    except ValueError:
        internal_error("test site")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "jane.doe" not in text and "bob.smith" not in text
    assert "@example.org" in text and "@example.net" in text  # domains may stay
    assert "ValueError" in text and "Traceback" in text


class FailuresOnly(Counting):
    name = "failures-only"
    failed_only = True


def test_a_failed_only_stage_is_skipped_on_healthy_spans_and_sees_every_failure():
    from opentelemetry.trace import Status, StatusCode

    stage = FailuresOnly()
    provider, (out,) = provider_with(Pipeline([stage]))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("healthy"):
        pass
    with tracer.start_as_current_span("status-error") as span:
        span.set_status(Status(StatusCode.ERROR, "bad"))
    with tracer.start_as_current_span("recorded-not-raised") as span:  # an exception event, status unset
        span.record_exception(ValueError("kept going"))
    with tracer.start_as_current_span("plain-event") as span:
        span.add_event("checkpoint")
    assert stage.calls == 3  # every span with an ERROR status or an event; not the healthy one
    assert stage.started == 4  # start hooks do not depend on it


def test_the_sdk_wiring_runs_start_hooks_once_per_span_with_several_exporters():
    from mailscope.exporters.wiring import enriching_batch_processor

    stage = Counting()
    pipeline = Pipeline([stage])
    factory = enriching_batch_processor(pipeline)
    provider = TracerProvider()
    outs = [InMemorySpanExporter() for _ in range(3)]
    wrappers = [factory(out) for out in outs]
    for wrapper in wrappers:
        provider.add_span_processor(wrapper)
    tracer = provider.get_tracer("t")
    for _ in range(4):
        with tracer.start_as_current_span("mark-me"):
            pass
    provider.force_flush()
    assert [w.start_hooks for w in wrappers] == [True, False, False]
    assert stage.started == 4 and stage.calls == 4
    for out in outs:
        assert [s.attributes["test.marked"] for s in out.get_finished_spans()] == [True] * 4
    provider.shutdown()
