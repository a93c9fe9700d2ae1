"""The DELIVERY section from `mailscope report --jaeger` equals the one from the trace file.

Sends and the receiver's event spans (signed requests through the real Receiver and the
enrichment pipeline) are written with the OTLP JSON file exporter; each line goes to a real
Jaeger v2's OTLP/HTTP receiver (the `jaeger` fixture of tests/report/test_jaeger.py); then the
report is made from Jaeger and from the file.
"""

from __future__ import annotations

import json
import time
import urllib.request

from opentelemetry.exporter.otlp.json.file import FileSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from mailscope import attributes as attr
from mailscope.delivery import Receiver, tracking
from mailscope.processors.chain import build_pipeline
from mailscope.processors.pipeline import EnrichingSpanProcessor, StartProcessor
from mailscope.report import build_report, build_report_from_jaeger
from mailscope.report.model import Filters
from tests.report.test_jaeger import assert_same_report, jaeger  # noqa: F401 (fixture)
from tests.support import delivery_events as de

PROVIDERS = ("sendgrid", "mailgun", "postmark", "ses")


def write_traces(path) -> int:
    pipeline = build_pipeline()
    provider = TracerProvider(resource=Resource.create({attr.SERVICE_NAME: "shop"}))
    provider.add_span_processor(StartProcessor(pipeline))
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(FileSpanExporter(path=path))))
    keys = de.WebhookKeys()
    receiver = Receiver(config=keys.config(), tracer_provider=provider, meter_provider=MeterProvider())
    tracer = provider.get_tracer("shop")
    sent_at = time.time() - 600
    try:
        for n in range(24):
            send = tracer.start_span(attr.SPAN_SEND, attributes={attr.OPERATION: attr.OP_SEND})
            send.end()
            value = tracking.value_for(send, sent_at_s=sent_at)
            kind = "bounced" if n % 6 == 0 else "complained" if n % 11 == 0 else "delivered"
            body, headers = keys.request(PROVIDERS[n % 4], kind, f"m-{n}", value, at=sent_at + 5 + n)
            assert receiver.handle("/" + PROVIDERS[n % 4], "POST", headers, body).status == 200
    finally:
        keys.certs.stop()
        provider.shutdown()
    return 24 * 2


def test_the_delivery_section_from_jaeger_equals_the_one_from_the_file(jaeger, tmp_path):  # noqa: F811
    query_url, otlp_url = jaeger
    path = tmp_path / "traces.jsonl"
    spans = write_traces(path)
    for line in path.read_text().splitlines():
        request = urllib.request.Request(otlp_url, data=line.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
    now = time.time_ns()
    filters = Filters(service="shop", since_ns=now - 3600 * 10**9, until_ns=now + 60 * 10**9)
    deadline = time.monotonic() + 60
    while True:  # Jaeger stores what it received a moment later
        from_jaeger = build_report_from_jaeger(query_url, filters, progress=open("/dev/null", "w"))
        if from_jaeger["summary"]["spans"] == spans or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    from_file = build_report([str(path)], filters)
    assert from_file["delivery"]["events"] == 24 and from_file["delivery"]["in_send_trace"] == 24
    assert from_file["delivery"]["statuses"] == {"bounced": 4, "complained": 2, "delivered": 18}
    assert_same_report(from_jaeger["delivery"], from_file["delivery"])
    assert_same_report(from_jaeger["journey"]["accepted_to_delivered"], from_file["journey"]["accepted_to_delivered"])
    assert json.dumps(from_jaeger["delivery"]).count("clients.example.org") >= 1
