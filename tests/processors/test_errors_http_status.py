"""Upstream HTTP client spans that fail by their answer alone get a readable error pattern.

The requests and httpx instrumentations mark a span ERROR for a 4xx/5xx answer
without any exception or description, under the older semantic conventions with
only `http.status_code`. The error_type stage names the error by the status code
(as the HTTP conventions do) and the errors stage reads the status line, so a 503
is `infrastructure`, retryable, with the pattern `HTTP 503 Service Unavailable`,
instead of `unknown` with an empty pattern.
"""

from __future__ import annotations

import http.server
import threading

import httpx
import pytest
import requests
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailscope import attributes as attr
from mailscope.config import load_settings
from mailscope.processors.chain import build_pipeline
from mailscope.processors.pipeline import EnrichingSpanProcessor


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = int(self.path.strip("/"))
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"no")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def exported():
    pipeline = build_pipeline(load_settings(environ={}))
    out = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(out), start_hooks=True))
    RequestsInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    try:
        yield out
    finally:
        RequestsInstrumentor().uninstrument()
        HTTPXClientInstrumentor().uninstrument()
        provider.shutdown()


EXPECTED = {
    503: ("HTTP 503 Service Unavailable", "infrastructure", True),
    429: ("HTTP 429 Too Many Requests", "rate_limit", True),
    404: ("HTTP 404 Not Found", "validation", False),
    401: ("HTTP 401 Unauthorized", "authentication", False),
}


@pytest.mark.parametrize("client", ["requests", "httpx"])
def test_an_error_answer_alone_is_classified_by_its_status(exported, server_url, client):
    get = requests.get if client == "requests" else httpx.get
    for status in EXPECTED:
        assert get(f"{server_url}/{status}").status_code == status  # the app's result is untouched
    spans = exported.get_finished_spans()
    assert len(spans) == len(EXPECTED)
    for span, (status, (pattern, category, retryable)) in zip(spans, EXPECTED.items()):
        attributes = span.attributes
        assert attributes.get(attr.HTTP_STATUS_CODE_LEGACY, attributes.get(attr.HTTP_RESPONSE_STATUS_CODE)) == status
        assert attributes[attr.ERROR_TYPE] == str(status)
        assert attributes[attr.ERROR_PATTERN] == pattern
        assert attributes[attr.ERROR_CATEGORY] == category
        assert attributes[attr.ERROR_RETRYABLE] is retryable
    fingerprints = {span.attributes[attr.ERROR_FINGERPRINT] for span in spans}
    assert len(fingerprints) == len(EXPECTED)  # one error per status, told apart


def test_a_successful_answer_is_left_alone(exported, server_url):
    assert requests.get(f"{server_url}/200").status_code == 200
    (span,) = exported.get_finished_spans()
    assert attr.ERROR_TYPE not in span.attributes and attr.ERROR_CATEGORY not in span.attributes
