"""The hot-path shortcuts of the enrichment chain keep every privacy guarantee.

The last redaction stage skips re-scanning the name and attributes the early stage
already cleaned, so it must still catch everything a stage in between wrote: values,
keys, arrays, a renamed span, and events/status/links (never covered by the early one).
The draft reads the SDK span's own attribute dict: writes must never reach it.
"""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from mailscope.processors.draft import SpanDraft, make_event
from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline, StartProcessor
from mailscope.processors.redact import EarlyRedactionStage, RedactionStage
from tests.support.span_strings import exported_text

ADDRESS = "jane@example.org"


class Leaky:
    """A stage between the two redactions that writes addresses everywhere it can."""

    name = "leaky"

    def __init__(self):
        self.saw_clean_input = None

    def __call__(self, draft):
        self.saw_clean_input = ADDRESS not in draft.name and ADDRESS not in str(dict(draft.attributes))
        draft.set_attribute("late.value", f"to {ADDRESS}")
        draft.set_attributes({"late.array": ("ok", ADDRESS), f"late.key {ADDRESS}": 1, "late.number": 7})
        draft.set_name(f"renamed for {ADDRESS}")
        draft.replace_events([*draft.events, make_event(f"ev {ADDRESS}", {"who": ADDRESS}, 1)])
        draft.replace_links([*draft.links, Link(draft.span.context, {"peer": ADDRESS})])
        draft.set_status(Status(StatusCode.ERROR, f"failed for {ADDRESS}"))


def export(stages, body):
    pipeline = Pipeline(stages)
    provider = TracerProvider()
    out = InMemorySpanExporter()
    provider.add_span_processor(StartProcessor(pipeline))
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(out)))
    body(provider.get_tracer("t"))
    provider.shutdown()
    return out.get_finished_spans()


def body(tracer):
    with tracer.start_as_current_span(f"send {ADDRESS}", attributes={"rcpt": ADDRESS, "n": 1}):
        pass


def test_what_stages_write_after_the_early_redaction_is_still_redacted():
    leaky = Leaky()
    (span,) = export([EarlyRedactionStage("domain"), leaky, RedactionStage("domain")], body)
    assert leaky.saw_clean_input is True
    text = exported_text(span)
    assert "jane@" not in text
    assert span.name == "renamed for <redacted>@example.org"
    assert span.attributes["late.value"] == "to <redacted>@example.org"
    assert span.attributes["late.array"] == ("ok", "<redacted>@example.org")
    assert span.attributes["late.key <redacted>@example.org"] == 1
    assert span.attributes["late.number"] == 7 and span.attributes["n"] == 1
    assert span.attributes["rcpt"] == "<redacted>@example.org"
    assert span.events[-1].attributes["who"] == "<redacted>@example.org"
    assert span.links[-1].attributes["peer"] == "<redacted>@example.org"
    assert span.status.description == "failed for <redacted>@example.org"


def test_full_mode_and_a_mode_mismatch_still_scan_everything():
    (span,) = export([EarlyRedactionStage("full"), Leaky(), RedactionStage("full")], body)
    assert "example.org" not in exported_text(span)
    # an early stage in a weaker mode does not let the last stage skip anything
    (span,) = export([EarlyRedactionStage("off"), Leaky(), RedactionStage("domain")], body)
    assert "jane@" not in exported_text(span)


def test_without_an_early_stage_the_last_one_scans_the_span_itself():
    (span,) = export([Leaky(), RedactionStage("domain")], body)
    assert "jane@" not in exported_text(span)
    assert span.attributes["rcpt"] == "<redacted>@example.org"


def test_a_clean_span_written_with_clean_values_is_forwarded_with_them_unchanged():
    class Clean:
        name = "clean"

        def __call__(self, draft):
            draft.set_attributes({"mailscope.memory.rss_delta": 0, "label": "welcome"})

    def plain(tracer):
        with tracer.start_as_current_span("handle-order", attributes={"order.id": 5}):
            pass

    (span,) = export([EarlyRedactionStage("domain"), Clean(), RedactionStage("domain")], plain)
    assert dict(span.attributes) == {"order.id": 5, "mailscope.memory.rss_delta": 0, "label": "welcome"}


def test_the_draft_never_writes_into_the_sdk_spans_attributes():
    out = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(out))
    with provider.get_tracer("t").start_as_current_span("op", attributes={"k": 1}) as live:
        live.add_event("e")
    (finished,) = out.get_finished_spans()
    draft = SpanDraft(finished)
    assert draft.attributes == {"k": 1} and draft.has_events and not draft.is_error
    draft.set_attribute("added", 2)
    draft.set_attributes({"more": 3})
    assert dict(finished.attributes) == {"k": 1}
    assert dict(draft.build().attributes) == {"k": 1, "added": 2, "more": 3}
    assert [e.name for e in draft.events] == ["e"] and draft.exception_event() is None
    assert draft.duration_ns == finished.end_time - finished.start_time


def test_only_writes_that_may_hold_free_text_are_queued_for_the_last_rescan():
    out = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(out))
    with provider.get_tracer("t").start_as_current_span("op", attributes={"k": 1}):
        pass
    (finished,) = out.get_finished_spans()
    draft = SpanDraft(finished)
    EarlyRedactionStage("domain")(draft)
    draft.set_attributes({"mailscope.memory.rss_bytes": 4096}, free_text=False)
    draft.set_attributes({"label": f"to {ADDRESS}"})
    assert draft.written == ["label"]
    RedactionStage("domain")(draft)
    built = draft.build()
    assert built.attributes["mailscope.memory.rss_bytes"] == 4096
    assert ADDRESS not in built.attributes["label"] and "<redacted>@" in built.attributes["label"]
