"""Redaction: every address form is masked, nothing that is not an address is touched."""

import pytest
from hypothesis import given, settings, strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from mailscope import attributes as attr
from mailscope.config import load_settings
from mailscope.processors.chain import build_stages
from mailscope.processors.pipeline import EnrichingSpanProcessor, Pipeline, StartProcessor
from mailscope.processors.redact import MASK, EarlyRedactionStage, RedactionStage, might_contain_address, redact
from tests.support.span_strings import exported_text

# (input, expected with mode=domain)
MASKED = [
    ("550 5.1.1 <john.doe@gmail.com>: Recipient address rejected",
     "550 5.1.1 <<redacted>@gmail.com>: Recipient address rejected"),
    ("{'john+news@example.co.uk': (550, b'5.1.1 <john+news@example.co.uk>: user unknown')}",
     "{'<redacted>@example.co.uk': (550, b'5.1.1 <<redacted>@example.co.uk>: user unknown')}"),
    ('"john doe"@example.com bounced', "<redacted>@example.com bounced"),
    ('"very.(),:;<>[]\\".unusual"@strange.example.com', "<redacted>@strange.example.com"),
    ("müller@bücher.de", "<redacted>@bücher.de"),
    ("用户@例子.广告", "<redacted>@例子.广告"),
    ("x@xn--bcher-kva.de", "<redacted>@xn--bcher-kva.de"),
    ("o'brien@example.ie", "<redacted>@example.ie"),
    ("https://example.com/unsubscribe?email=jane@example.org&list=7",
     "https://example.com/unsubscribe?email=<redacted>@example.org&list=7"),
    ("https://example.com?email=jane@example.org", "https://example.com?email=<redacted>@example.org"),
    ("bounce+jane=example.org@mailer.example.net", "<redacted>@mailer.example.net"),
    ("bounces-jane=example.org@mailer.example.net", "<redacted>@mailer.example.net"),
    ("to=<jane@example.org>, relay=mx.example.org[192.0.2.1]:25",
     "to=<<redacted>@example.org>, relay=mx.example.org[192.0.2.1]:25"),
    ("mailto:jane@example.org", "mailto:<redacted>@example.org"),
    ("email=jane%40example.org&x=1", "email=<redacted>%40example.org&x=1"),
    ("jane%2Bnews%40example.org", "<redacted>%40example.org"),
    ('{"to": "jane\\u0040example.org"}', '{"to": "<redacted>\\u0040example.org"}'),
    ("jane&#64;example.org", "<redacted>&#64;example.org"),
    ("b'5.1.1 user unknown\\njane@example.org'", "b'5.1.1 user unknown\\n<redacted>@example.org'"),
    ("Deliver to jane@example.org.", "Deliver to <redacted>@example.org."),
    ("user@[192.0.2.1]", "<redacted>@[192.0.2.1]"),
    ("['a@b.com', \"c@d.org\"]", "['<redacted>@b.com', \"<redacted>@d.org\"]"),
    ("JANE.DOE@EXAMPLE.COM", "<redacted>@EXAMPLE.COM"),
    ("<20240101.12345.abc@mail.example.com>", "<<redacted>@mail.example.com>"),
]

# text that is not an address and must come back byte for byte
UNTOUCHED = [
    "https://user@example.com/path",
    "https://user:secret@smtp.example.com:587/",
    "@decorator\ndef f(): pass",
    "a@b",
    "root@localhost",
    "npm install left-pad@1.3.0",
    "<img src='logo@2x.png'>",
    "matrix = a @ b",
    "cost: 5 @ 10.00",
    "@here the deploy is done",
    "no address at all, just text with 5.1.1 and 550",
    "<redacted>@gmail.com",
]


@pytest.mark.parametrize("text,expected", MASKED)
def test_addresses_are_masked_keeping_the_domain(text, expected):
    assert redact(text, "domain") == expected


@pytest.mark.parametrize("text,expected", MASKED)
def test_full_mode_masks_the_domain_too(text, expected):
    out = redact(text, "full")
    # full = domain mode with every kept domain replaced by the mask
    import re

    kept = re.findall(r"<redacted>(@|%40|\\u0040|&#64;)(\[[^\]]+\]|[^\s<>'\",\]\)]+?)(?=[.]?(?:$|[\s<>'\",\]\)&]))", expected)
    assert kept, expected
    want = expected
    for sep, domain in kept:
        want = want.replace(f"{MASK}{sep}{domain}", f"{MASK}{sep}{MASK}", 1)
    assert out == want
    assert redact(out, "full") == out


@pytest.mark.parametrize("text", UNTOUCHED)
def test_non_addresses_are_not_corrupted(text):
    assert redact(text, "domain") == text
    assert redact(text, "full") == text


@pytest.mark.parametrize("text,expected", MASKED)
def test_off_changes_nothing(text, expected):
    assert redact(text, "off") == text


def test_redaction_is_idempotent():
    for text, expected in MASKED:
        assert redact(expected, "domain") == expected


def test_precheck_is_a_guarantee():
    for text in UNTOUCHED + [t for t, _ in MASKED]:
        if not might_contain_address(text):
            assert redact(text) == text
    assert not might_contain_address("plain status: 550 5.1.1 user unknown")


# --- properties ------------------------------------------------------------------
_local_chars = st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-'") + ["é", "ü", "ß"])
_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
_tld = st.sampled_from(["com", "org", "net", "de", "co.uk", "io", "email", "info", "xn--p1ai", "рф"])


@st.composite
def addresses(draw):
    local = draw(st.text(alphabet=_local_chars, min_size=1, max_size=20))
    local = local.strip(".'") or "x"
    local = local.replace("..", ".")
    local = draw(st.sampled_from(["", "j"])) + local if not local[0].isalnum() else local
    if not local[0].isalnum() and local[0] != "_":
        local = "j" + local
    domain = ".".join(draw(st.lists(_label, min_size=1, max_size=3))) + "." + draw(_tld)
    return local, domain


_wrappers = st.sampled_from([
    "{}", "<{}>", "'{}'", '"{}"', "({})", "[{}]", "to={}", "RCPT TO:<{}>", "{{'{}': (550, b'no')}}",
    "b'\\n{}'", "mailto:{}", "https://x.example/?u={}&y=1", "{},", "{}.", "{}:",
])
_filler = st.text(alphabet=st.characters(blacklist_characters="@%\\&", blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(addresses(), _wrappers, _filler, _filler)
def test_property_no_address_survives(address, wrapper, before, after):
    local, domain = address
    email = f"{local}@{domain}"
    text = before + " " + wrapper.format(email) + " " + after
    out = redact(text, "domain")
    assert email not in out
    assert f"{MASK}@{domain}" in out
    full = redact(text, "full")
    assert email not in full and f"@{domain}" not in full


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="@%\\&", blacklist_categories=("Cs",)), max_size=200))
def test_property_text_without_at_is_untouched(text):
    assert redact(text, "domain") == text


@pytest.mark.timeout(60)
def test_a_long_blob_before_an_at_is_not_rescanned_from_every_position():
    """A long run of word characters before an `@` (a base64 blob in a stack trace): a plain
    regex search retries the local part from every position of the run and goes quadratic
    (a 1 MB blob would take hours); the `@`-anchored scan finishes. Cost ratios are measured
    in benchmarks/bench_errors.py, not asserted here."""
    blob = "QUJD" * 250_000
    text = blob + "@x " + "bob@example.org " * 3 + blob + "%40" + blob
    out = redact(text)
    assert out == blob + "@x " + "<redacted>@example.org " * 3 + blob + "%40" + blob


# --- the stage on real SDK spans -------------------------------------------------------
def _export(stages, body):
    pipeline = Pipeline(stages)
    provider = TracerProvider()
    out = InMemorySpanExporter()
    provider.add_span_processor(StartProcessor(pipeline))
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(out)))
    body(provider.get_tracer("t"))
    provider.shutdown()
    return out.get_finished_spans()


def _everything(tracer):
    linked = tracer.start_span("linked")
    linked.end()
    link = Link(linked.get_span_context(), {"peer": "jane@example.org"})
    with tracer.start_as_current_span("send to jane@example.org", links=[link]) as span:
        span.set_attribute("rcpt", "<jane@example.org>")
        span.set_attribute("rcpts", ["a@example.org", "plain", "b@example.net"])
        span.set_attribute("count", 2)
        span.set_attribute("user jane@example.org", True)
        try:
            raise ValueError("refused {'jane@example.org': (550, b'5.1.1 <jane@example.org> unknown')}")
        except ValueError as exc:
            span.record_exception(exc)
        span.add_event("note jane@example.org", {"who": "jane@example.org"})
        span.set_status(Status(StatusCode.ERROR, "could not deliver to jane@example.org"))


def test_stage_redacts_every_exported_string():
    spans = _export([RedactionStage("domain")], _everything)
    span = [s for s in spans if s.name != "linked"][0]
    text = exported_text(span)
    assert "jane@" not in text and "a@example.org" not in text and "b@example.net" not in text
    assert span.name == "send to <redacted>@example.org"
    assert span.attributes["rcpts"] == ("<redacted>@example.org", "plain", "<redacted>@example.net")
    assert span.attributes["count"] == 2
    assert "user <redacted>@example.org" in span.attributes
    exc = span.events[0].attributes
    assert "<redacted>@example.org" in exc[attr.EXCEPTION_MESSAGE]
    assert "<redacted>@example.org" in exc[attr.EXCEPTION_STACKTRACE]
    assert exc[attr.EXCEPTION_TYPE] == "ValueError"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "could not deliver to <redacted>@example.org"
    assert span.links[0].attributes["peer"] == "<redacted>@example.org"
    assert span.links[0].context == spans[0].context


def test_stage_full_and_off():
    (_, full) = _export([RedactionStage("full")], _everything)
    assert "example.org" not in exported_text(full)
    (_, off) = _export([RedactionStage("off")], _everything)
    assert off.name == "send to jane@example.org"


def test_clean_spans_pass_through_uncopied():
    seen = []

    class Spy:
        name = "spy"

        def __call__(self, draft):
            seen.append(draft)

    def clean(tracer):
        with tracer.start_as_current_span("email.send", attributes={"email.recipients.domains": ("example.org",)}):
            pass

    _export([RedactionStage("domain"), Spy()], clean)
    assert seen and not seen[0].dirty


def test_chain_puts_privacy_critical_redaction_first_and_last():
    for mode in ("domain", "full", "off"):
        stages = build_stages(load_settings({"MAILSCOPE_REDACT": mode}))
        assert type(stages[-1]) is RedactionStage and isinstance(stages[0], EarlyRedactionStage)
        assert stages[-1].privacy_critical is True and stages[0].privacy_critical is True
        assert stages[-1].mode == mode == stages[0].mode
        assert not any(isinstance(s, RedactionStage) for s in stages[1:-1])
    assert build_stages(load_settings({}))[-1].mode == "domain"


def test_stages_between_see_an_address_free_name_and_attributes():
    seen = []

    class Spy:
        name = "spy"

        def __call__(self, draft):
            seen.append((draft.name, dict(draft.attributes), [dict(e.attributes) for e in draft.events]))

    def body(tracer):
        with tracer.start_as_current_span("notify jane@example.org", attributes={"to": "jane@example.org"}) as span:
            span.add_event("x", {"who": "jane@example.org"})

    spans = _export([EarlyRedactionStage("domain"), Spy(), RedactionStage("domain")], body)
    name, attributes, events = seen[0]
    assert name == "notify <redacted>@example.org" and attributes == {"to": "<redacted>@example.org"}
    assert events == [{"who": "jane@example.org"}]  # events are the last stage's job
    assert spans[0].events[0].attributes["who"] == "<redacted>@example.org"


def test_a_failing_redaction_drops_the_span_instead_of_leaking(monkeypatch):
    stage = RedactionStage("domain")
    monkeypatch.setattr("mailscope.processors.redact._DOMAIN_RX", None)  # breaks redact()
    spans = _export([stage], _everything)
    assert [s.name for s in spans] == ["linked"]  # the span without addresses was never searched
