"""Other instrumentations' spans through the whole chain: link attributes and every event attribute are redacted.

The early stage scans only the name and the attributes; events and links are
the late stage's job, on healthy spans and on failed ones alike.
"""

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from mailscope.config import load_settings
from mailscope.processors.chain import build_pipeline
from mailscope.processors.pipeline import EnrichingSpanProcessor
from tests.support.span_strings import exported_text

ADDRESSES = ("ann@example.org", "bob@example.org", "cid@example.net", "dan@example.org", "eve@example.org")


def _spans(mode):
    pipeline = build_pipeline(load_settings({"MAILSCOPE_REDACT": mode, "MAILSCOPE_MEMORY": "off"}))
    provider = TracerProvider()
    out = InMemorySpanExporter()
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(out), start_hooks=True))
    tracer = provider.get_tracer("some.library")  # not mailscope: no mailscope.operation anywhere
    with tracer.start_as_current_span("upstream") as upstream:
        pass
    link = Link(upstream.get_span_context(), {"peer": "ann@example.org", "peers": ("bob@example.org", "x")})
    with tracer.start_as_current_span("GET /users", links=[link]) as healthy:  # clean name and attributes
        healthy.set_attribute("http.request.method", "GET")
        healthy.add_event("cache", {"note": "plain"})
        healthy.add_event("lookup", {"user": "cid@example.net", "n": 1})
    with tracer.start_as_current_span("POST /send", links=[link]) as failed:
        try:
            raise ConnectionError("no route for dan@example.org")
        except ConnectionError as exc:
            failed.record_exception(exc, attributes={"retry.to": "eve@example.org"})
        failed.set_status(Status(StatusCode.ERROR, "failed"))
    provider.shutdown()
    return {s.name: s for s in out.get_finished_spans()}


@pytest.mark.parametrize("mode", ["domain", "full"])
def test_links_and_events_of_other_instrumentations_are_redacted(mode):
    spans = _spans(mode)
    for name in ("GET /users", "POST /send"):
        text = exported_text(spans[name])
        assert not [a for a in ADDRESSES if a in text or a.split("@")[0] + "@" in text], (mode, text)
        assert spans[name].links[0].attributes["peer"].startswith("<redacted>@")
    assert spans["GET /users"].events[1].attributes["user"] == ("<redacted>@example.net" if mode == "domain"
                                                                else "<redacted>@<redacted>")
    event = spans["POST /send"].events[0]
    assert event.attributes["retry.to"].startswith("<redacted>@")
    assert "<redacted>@" in event.attributes["exception.message"]


def test_off_exports_them_as_recorded():
    spans = _spans("off")
    text = exported_text(spans["GET /users"]) + exported_text(spans["POST /send"])
    assert all(a in text for a in ADDRESSES)
