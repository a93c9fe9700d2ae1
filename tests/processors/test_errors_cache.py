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
    monkeypatch.setattr(errors, "masked", lambda text: text)
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


HINTS = ["550 5.1.1", "421 4.7.0", "452", "5.2.2", "HTTP 503 Service Unavailable", "HTTP 429 Too Many Requests",
         "HTTP 401 Unauthorized", "250 2.0.0"]


@pytest.fixture
def no_hints(monkeypatch):
    monkeypatch.setattr(errors, "_hints", {})


def test_a_remembered_hint_gives_what_categorize_gives(no_hints):
    from mailscope.processors.error_categories import categorize

    first = [errors._categorize_hint(hint) for hint in HINTS]
    again = [errors._categorize_hint(hint) for hint in HINTS]  # from the table
    assert first == again == [categorize(hint) for hint in HINTS]
    assert set(errors._hints) == set(HINTS)


def test_the_hint_table_is_bounded(no_hints, monkeypatch):
    monkeypatch.setattr(errors, "_HINTS_MAX", 4)
    for code in range(500, 560):
        errors._categorize_hint(f"{code} 5.1.1")
    assert len(errors._hints) == 4
    long_hint = "550 " + "5.1.1 " * 20
    errors._categorize_hint(long_hint)
    assert long_hint not in errors._hints


def test_span_codes_decide_an_unknown_message_the_same_every_time(no_hints):
    def failed():
        out = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(out))
        attributes = {attr.SMTP_RESPONSE_CODE: 552, attr.SMTP_ENHANCED_STATUS: "5.2.2"}
        with provider.get_tracer("t").start_as_current_span("email.send", attributes=attributes) as span:
            span.set_status(Status(StatusCode.ERROR, "the thing went wrong"))
        draft = SpanDraft(out.get_finished_spans()[0])
        ErrorsStage(counter=_Counter())(draft)
        return draft.attributes[attr.ERROR_CATEGORY], draft.attributes[attr.ERROR_RETRYABLE]

    first, second = failed(), failed()
    assert first == second == ("mailbox_full", False)
    assert "552 5.2.2" in errors._hints


def test_an_http_status_decides_an_unknown_message_through_the_hint_table(no_hints):
    from mailscope.processors.error_categories import categorize

    out = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(out))
    with provider.get_tracer("t").start_as_current_span("GET", attributes={attr.HTTP_RESPONSE_STATUS_CODE: 503}) as span:
        span.set_status(Status(StatusCode.ERROR, "the thing went wrong"))
    for _ in range(2):
        draft = SpanDraft(out.get_finished_spans()[0])
        ErrorsStage(counter=_Counter())(draft)
        got = (draft.attributes[attr.ERROR_CATEGORY], draft.attributes[attr.ERROR_RETRYABLE])
        assert got == categorize("HTTP 503 Service Unavailable") != ("unknown", False)
    assert "HTTP 503 Service Unavailable" in errors._hints
