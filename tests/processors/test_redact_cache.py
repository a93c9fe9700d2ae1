"""The last redaction stage remembers what it made of repeated failure texts: invisibly.

An error storm repeats the same exception message, stack trace and status description;
the stage looks a repeat up instead of scanning it again. A remembered result must be
exactly what `redact` returns for that text and mode, and the table must stay bounded.
"""

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from mailscope.config import load_settings
from mailscope.processors import redact as redaction
from mailscope.processors.chain import build_stages
from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline, StartProcessor
from mailscope.processors.redact import _redact_remembered, _redact_text, forget_texts, redact
from tests.processors.test_redact import MASKED, UNTOUCHED
from tests.support.span_strings import exported_strings, exported_text


@pytest.fixture(autouse=True)
def _empty_table():
    forget_texts()
    yield
    forget_texts()


def _held_chars(mode):
    return sum(redaction._chars(k) + redaction._chars(v) for k, v in redaction._texts[mode].items())


@pytest.mark.parametrize("mode", ["domain", "full"])
def test_a_remembered_text_gives_what_redact_gives(mode):
    texts = [t for t, _ in MASKED] + UNTOUCHED
    first = [_redact_text(t, mode) for t in texts]
    assert not redaction._texts[mode]  # a text is remembered when it is seen again
    second = [(_redact_text(t, mode), _redact_text(t, mode))[1] for t in texts]  # seen again at once
    assert all(t in redaction._texts[mode] for t in texts)
    third = [_redact_text(t, mode) for t in texts]  # from the table this time
    assert first == second == third == [redact(t, mode) for t in texts]


def test_texts_seen_once_are_not_remembered():
    """Failures that never repeat (a new recipient in each message) pay no table upkeep."""
    for i in range(5000):
        assert _redact_text(f"refused user{i}@example.org", "domain") == "refused <redacted>@example.org"
        attributes = {"exception.message": f"bounced user{i}@example.org"}
        assert _redact_remembered(attributes, "domain") == {"exception.message": "bounced <redacted>@example.org"}
    assert len(redaction._texts["domain"]) < 50  # only hash collisions in the array of recent misses


def test_the_modes_do_not_share_results():
    text = "550 5.1.1 <john.doe@gmail.com>: Recipient address rejected"
    assert _redact_text(text, "domain") == "550 5.1.1 <<redacted>@gmail.com>: Recipient address rejected"
    assert _redact_text(text, "full") == "550 5.1.1 <<redacted>@<redacted>>: Recipient address rejected"
    assert _redact_text(text, "domain") == "550 5.1.1 <<redacted>@gmail.com>: Recipient address rejected"


def test_an_unchanged_text_comes_back_as_the_same_object():
    """The stage tells a rewritten value by identity: a text with nothing to mask must not
    come back as another (equal) object, or every repeat would rebuild the event."""
    text = "".join(["https://user", "@example.com/path"])  # a fresh object each call
    assert _redact_text(text, "domain") is text
    again = "".join(["https://user", "@example.com/path"])
    assert _redact_text(again, "domain") is again


def test_two_texts_sharing_a_slot_are_still_remembered():
    """A storm alternates its texts (message, stack trace, ...): two that share a slot of the
    array of recent misses must not keep evicting each other from it."""
    mask = redaction._SEEN_SLOTS - 1
    message = "refused jane@example.org"
    other = next(
        text
        for text in (f"Traceback {i}\nrefused jane@example.org" for i in range(1_000_000))
        # str hashes differ from run to run: search one that shares the first slot only
        if hash(text) & mask == hash(message) & mask and (hash(text) >> 10) & mask != (hash(message) >> 10) & mask
    )
    for _ in range(3):
        _redact_text(message, "domain")
        _redact_text(other, "domain")
    assert message in redaction._texts["domain"] and other in redaction._texts["domain"]


def test_the_table_is_bounded_in_entries(monkeypatch):
    monkeypatch.setattr(redaction, "_TEXTS_MAX", 8)
    for i in range(100):
        for _ in range(2):
            assert _redact_text(f"user{i}@example.org refused", "domain") == "<redacted>@example.org refused"
    assert len(redaction._texts["domain"]) == 8
    assert "user99@example.org refused" in redaction._texts["domain"]  # the newest stay
    assert "user0@example.org refused" not in redaction._texts["domain"]


def test_the_table_is_bounded_in_characters(monkeypatch):
    monkeypatch.setattr(redaction, "_TEXTS_BUDGET", 1000)
    for i in range(200):
        for _ in range(2):
            _redact_text(f"user{i}@example.org " + "x" * 80, "domain")
            _redact_text(f"user{i}@example.org " + "y" * 80, "full")
    for mode in ("domain", "full"):
        assert 0 < _held_chars(mode) <= 1000
        assert redaction._texts_chars[mode] == _held_chars(mode)


def test_a_long_text_is_redacted_but_not_remembered():
    text = "trace " * 5000 + "jane@example.org"
    assert len(text) > redaction._TEXT_MAX_CHARS
    for _ in range(3):
        assert _redact_text(text, "domain") == redact(text, "domain")
    assert text not in redaction._texts["domain"]


def test_a_remembered_mapping_gives_what_the_scan_gives():
    attributes = {
        "exception.type": "smtplib.SMTPRecipientsRefused",
        "exception.message": "{'jane@example.org': (550, b'5.1.1 User unknown')}",
        "exception.stacktrace": "Traceback ...\nSMTPRecipientsRefused: {'jane@example.org': (550, b'...')}\n",
        "exception.escaped": "False",
    }
    want = redaction._redact_mapping(attributes, "domain")
    first = _redact_remembered(attributes, "domain")
    _redact_remembered(dict(attributes), "domain")  # remembered on the second sighting
    assert tuple(attributes.items()) in redaction._texts["domain"]
    again = _redact_remembered(dict(attributes), "domain")  # from the table this time
    assert first == again == want and list(again) == list(want)
    assert again is not first  # every span gets a dict of its own
    again["exception.type"] = "changed"
    assert _redact_remembered(dict(attributes), "domain") == want
    assert _redact_remembered({"k": "no address"}, "domain") is None


def test_mappings_with_other_values_than_texts_are_not_remembered_by_value():
    """1 == 1.0 == True: a mapping remembered by its items would hand a float's span the int."""
    for _ in range(3):
        first = _redact_remembered({"who": "jane@example.org", "n": 1}, "domain")
    second = _redact_remembered({"who": "jane@example.org", "n": True}, "domain")
    assert first == {"who": "<redacted>@example.org", "n": 1}
    assert second["n"] is True and type(first["n"]) is int


def test_a_large_mapping_is_redacted_but_not_remembered():
    attributes = {"exception.message": "jane@example.org", "exception.stacktrace": "x" * 20000}
    for _ in range(3):
        assert _redact_remembered(attributes, "full")["exception.message"] == "<redacted>@<redacted>"
    assert tuple(attributes.items()) not in redaction._texts["full"]


def _error_storm(tracer, n=3):
    linked = tracer.start_span("linked")
    linked.end()
    for _ in range(n):
        link = Link(linked.get_span_context(), {"peer": "jane@example.org"})
        with tracer.start_as_current_span("email.send", links=[link]) as span:
            try:
                raise ValueError("refused {'jane@example.org': (550, b'5.1.1 <jane@example.org> unknown')}")
            except ValueError as exc:
                span.record_exception(exc)
            span.add_event("bounce jane@example.org", {"who": "jane@example.org"})
            span.set_status(Status(StatusCode.ERROR, "could not deliver to jane@example.org"))


def _failure_text(span):
    events = [(e.name, sorted(e.attributes.items())) for e in span.events]
    links = [sorted(link.attributes.items()) for link in span.links]
    return repr((events, span.status.description, links))


@pytest.mark.parametrize("mode", ["domain", "full"])
def test_repeated_error_spans_export_the_same_redacted_text(mode):
    """The first span of a storm fills the table, the others read it: all export the same."""
    pipeline = Pipeline(build_stages(load_settings(environ={"MAILSCOPE_REDACT": mode})))
    provider = TracerProvider()
    out = InMemorySpanExporter()
    provider.add_span_processor(StartProcessor(pipeline))
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(out)))
    _error_storm(provider.get_tracer("t"))
    provider.shutdown()
    spans = [s for s in out.get_finished_spans() if s.name == "email.send"]
    assert len(spans) == 3
    assert all("jane@" not in exported_text(s) for s in spans)
    texts = [_failure_text(s) for s in spans]
    assert texts[0] == texts[1] == texts[2]
    first = spans[0]
    assert first.status.description == redact("could not deliver to jane@example.org", mode)
    assert first.events[1].name == redact("bounce jane@example.org", mode)
    assert first.links[0].attributes["peer"] == redact("jane@example.org", mode)
    assert "could not deliver to jane@example.org" in redaction._texts[mode]  # the repeats were looked up


@pytest.mark.parametrize("run,extra", [("_PLAIN_RUN", "_PLAIN_EXTRA"), ("_ENCODED_RUN", "_ENCODED_EXTRA")])
def test_the_local_part_run_is_exactly_alnum_underscore_and_the_extra_characters(run, extra):
    """The scan finds the local part with a regex on the reversed window: its class must accept
    the characters the character loop it replaced accepted (isalnum, "_", the extras), no more."""
    rx, chars = getattr(redaction, run), getattr(redaction, extra)
    wrong = [
        hex(code)
        for code in range(0x110000)
        if (rx.fullmatch(chr(code)) is not None) != (chr(code).isalnum() or chr(code) == "_" or chr(code) in chars)
    ]
    assert wrong == []


def test_the_local_part_ends_at_the_window_and_at_the_floor():
    assert redaction._local_start("x" * 300 + "@", 300, 0, redaction._PLAIN_RUN) == 300 - redaction._WINDOW
    assert redaction._local_start("ab cd@", 5, 0, redaction._PLAIN_RUN) == 3
    assert redaction._local_start("abcd@", 4, 2, redaction._PLAIN_RUN) == 2
    assert redaction._local_start("abcd@", 4, 4, redaction._PLAIN_RUN) == 4
    assert redaction._local_start("@", 0, 0, redaction._PLAIN_RUN) == 0


def _storm_strings(mode, count=6):
    pipeline = Pipeline(build_stages(load_settings(environ={"MAILSCOPE_REDACT": mode})))
    provider = TracerProvider()
    out = InMemorySpanExporter()
    provider.add_span_processor(StartProcessor(pipeline))
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(out)))
    tracer = provider.get_tracer("t")
    for i in range(count):
        with tracer.start_as_current_span("email.send") as span:
            recipient = "jane@example.org" if i % 3 else f"user{i}@example.org"  # repeats and one-offs
            try:
                raise ValueError(f"refused {{'{recipient}': (550, b'5.1.1 <{recipient}> unknown')}}")
            except ValueError as exc:
                span.record_exception(exc, attributes={"attempt": 2} if i % 2 else None)
            span.add_event(f"bounce {recipient}", {"who": recipient, "note": "see https://user@example.com/x"})
            span.set_status(Status(StatusCode.ERROR, f"could not deliver to {recipient}"))
    provider.shutdown()
    return [list(map(str, exported_strings(s))) for s in out.get_finished_spans()]


@pytest.mark.parametrize("mode", ["domain", "full"])
def test_the_tables_are_invisible_in_what_is_exported(mode, monkeypatch):
    """The same spans through the chain with the tables and without them export the same strings."""
    remembered = _storm_strings(mode)
    assert redaction._texts[mode]  # the repeats went through the tables
    monkeypatch.setattr(redaction, "_texts", {})  # every text scanned, as before the tables
    scanned = _storm_strings(mode)
    assert remembered == scanned
    assert all("jane@" not in s and "user0@" not in s for span in remembered for s in span)
