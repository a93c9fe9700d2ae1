"""What the errors stage writes, and what of it the last redaction rescans.

The stage vouches that the category (a constant), the retryable flag, the fingerprint (hex)
and the occurrence count hold no address; only the pattern, derived from the message, is
queued for the last redaction's rescan. The exported attributes keep their order.
"""

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from mailscope import attributes as attr
from mailscope.processors import errors
from mailscope.processors.draft import SpanDraft
from mailscope.processors.errors import ErrorsStage
from mailscope.processors.redact import EarlyRedactionStage, RedactionStage, forget_texts

ADDRESS = "jane.doe@example.org"


class _Counter:
    def __init__(self):
        self.calls = []

    def add(self, amount, labels):
        self.calls.append((amount, labels))


def _failed_span(description):
    out = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(out))
    with provider.get_tracer("t").start_as_current_span("email.send", attributes={"k": 1}) as span:
        span.set_status(Status(StatusCode.ERROR, description))
    (finished,) = out.get_finished_spans()
    return finished


@pytest.fixture
def unmasked(monkeypatch):
    """A masking that leaves the address in the pattern (a miss another version could have)."""
    monkeypatch.setattr(errors, "mask", lambda text: text)
    monkeypatch.setattr(errors, "_cache", {})
    monkeypatch.setattr(errors, "_messages", {})
    forget_texts()


def _run(description):
    draft = SpanDraft(_failed_span(description))
    EarlyRedactionStage("domain")(draft)
    ErrorsStage(counter=_Counter())(draft)
    return draft


def test_only_the_pattern_is_queued_for_the_rescan(unmasked):
    draft = _run(f"550 5.1.1 <{ADDRESS}> user unknown")
    assert draft.written == [attr.ERROR_PATTERN]


def test_a_pattern_holding_an_address_is_still_redacted(unmasked):
    draft = _run(f"550 5.1.1 <{ADDRESS}> user unknown")
    assert ADDRESS in draft.attributes[attr.ERROR_PATTERN]
    RedactionStage("domain")(draft)
    built = draft.build()
    assert built.attributes[attr.ERROR_PATTERN] == "550 5.1.1 <<redacted>@example.org> user unknown"
    assert built.status.description == "550 5.1.1 <<redacted>@example.org> user unknown"
    assert all(ADDRESS not in str(v) for v in built.attributes.values())


def test_the_exported_attributes_keep_their_order():
    draft = _run("550 5.1.1 user unknown")
    keys = list(draft.build().attributes)
    assert keys == [
        "k",
        attr.ERROR_CATEGORY,
        attr.ERROR_RETRYABLE,
        attr.ERROR_PATTERN,
        attr.ERROR_FINGERPRINT,
        attr.ERROR_OCCURRENCES,
    ]


def test_event_attributes_are_read_from_sdk_and_plain_events_alike():
    from opentelemetry.sdk.trace import Event

    from mailscope.processors.error_type import event_attributes

    out = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(out))
    with provider.get_tracer("t").start_as_current_span("op") as span:
        span.record_exception(ValueError("boom"))
    (sdk_event,) = out.get_finished_spans()[0].events
    assert event_attributes(sdk_event)[attr.EXCEPTION_TYPE] == "ValueError"
    assert event_attributes(Event("exception", {attr.EXCEPTION_TYPE: "KeyError"})) == {attr.EXCEPTION_TYPE: "KeyError"}
    assert event_attributes(Event("exception", None)) == {}
