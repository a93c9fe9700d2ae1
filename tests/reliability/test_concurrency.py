"""32 threads sending and 200 asyncio tasks personalizing at once: every span parented right, counts exact.

In one process, with the real SDK and mailscope's pipeline: 32 threads each open
their own root span and send 8 emails over their own smtplib connection to one
real SMTP server, while on the main thread an event loop runs 200 tasks that
each open their own root span and render 5 personalizations with Jinja2's async
rendering, yielding to the other tasks between renders. Every email.send and
smtp.connect span is a child of its own thread's root, every personalize and
template load span a child of its own task's root (never another's), and the
counts of spans, delivered messages and the recipients metric are exact.
"""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections import Counter
from email.message import EmailMessage

import jinja2
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailscope import attributes as attr
from mailscope.config import reload_settings
from mailscope.instrumentation.smtp import SMTPInstrumentor
from mailscope.instrumentation.templates import TemplateInstrumentor
from mailscope.processors.chain import build_pipeline
from mailscope.processors.pipeline import EnrichingSpanProcessor, StartProcessor
from tests.support.smtp_server import Behaviour, SMTPTestServer

THREADS, SENDS = 32, 8
TASKS, RENDERS = 200, 5


@pytest.fixture
def telemetry():
    reload_settings()
    exporter = InMemorySpanExporter()
    pipeline = build_pipeline()
    provider = TracerProvider()
    provider.add_span_processor(StartProcessor(pipeline))
    provider.add_span_processor(EnrichingSpanProcessor(pipeline, SimpleSpanProcessor(exporter)))
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    instrumentors = [SMTPInstrumentor(), TemplateInstrumentor()]
    for instrumentor in instrumentors:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        instrumentor.instrument(tracer_provider=provider, meter_provider=meters)
    try:
        yield provider, exporter, reader
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        provider.shutdown()
        meters.shutdown()


def test_threads_and_tasks_at_once(telemetry):
    provider, exporter, reader = telemetry
    tracer = provider.get_tracer("load.app")
    env = jinja2.Environment(loader=jinja2.DictLoader({"digest.html": "Hi {{ name }}, {{ items|join(', ') }}"}),
                             enable_async=True)
    start = threading.Barrier(THREADS + 1)
    errors = []

    with SMTPTestServer(Behaviour(keep_messages=False)) as server:
        def sender(k: int) -> None:
            try:
                start.wait(10)
                with tracer.start_as_current_span(f"thread-{k}"):
                    with smtplib.SMTP(server.host, server.port, timeout=30) as client:
                        for n in range(SENDS):
                            msg = EmailMessage()
                            msg["From"], msg["To"], msg["Subject"] = "news@shop.example", f"r{n}@t{k}.example.com", "x"
                            msg.set_content("hello")
                            client.send_message(msg)
            except Exception as exc:  # surfaced by the assertion below
                errors.append(exc)

        async def personalizer(k: int) -> list[str]:
            out = []
            with tracer.start_as_current_span(f"task-{k}"):
                for n in range(RENDERS):
                    template = env.get_template("digest.html")
                    out.append(await template.render_async(name=f"reader {k}", items=[str(n), "x"]))
                    await asyncio.sleep(0)
            return out

        async def all_tasks():
            return await asyncio.gather(*(personalizer(k) for k in range(TASKS)))

        threads = [threading.Thread(target=sender, args=(k,)) for k in range(THREADS)]
        for thread in threads:
            thread.start()
        start.wait(10)
        rendered = asyncio.run(all_tasks())
        for thread in threads:
            thread.join(120)
        accepted = server.handler.accepted

    assert not errors, errors
    assert accepted == THREADS * SENDS
    assert rendered[7][3] == "Hi reader 7, 3, x"
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    counts = Counter(s.name for s in spans)
    assert counts[attr.SPAN_SEND] == THREADS * SENDS
    assert counts[attr.SPAN_SMTP_CONNECT] == THREADS
    assert counts[attr.SPAN_PERSONALIZE] == TASKS * RENDERS
    assert counts[attr.SPAN_TEMPLATE_LOAD] == TASKS * RENDERS

    def root_of(span):
        parent = by_id[span.parent.span_id]
        assert parent.parent is None, (span.name, parent.name)  # directly under its own root
        return parent.name

    sends_by_root = Counter(root_of(s) for s in spans if s.name == attr.SPAN_SEND)
    assert sends_by_root == {f"thread-{k}": SENDS for k in range(THREADS)}
    for s in spans:
        if s.name == attr.SPAN_SEND:  # its own thread's recipients, never another's
            k = root_of(s).split("-")[1]
            assert list(s.attributes[attr.RECIPIENTS_DOMAINS]) == [f"t{k}.example.com"]
    connects_by_root = Counter(root_of(s) for s in spans if s.name == attr.SPAN_SMTP_CONNECT)
    assert connects_by_root == {f"thread-{k}": 1 for k in range(THREADS)}
    renders_by_root = Counter(root_of(s) for s in spans if s.name == attr.SPAN_PERSONALIZE)
    assert renders_by_root == {f"task-{k}": RENDERS for k in range(TASKS)}
    loads_by_root = Counter(root_of(s) for s in spans if s.name == attr.SPAN_TEMPLATE_LOAD)
    assert loads_by_root == {f"task-{k}": RENDERS for k in range(TASKS)}

    totals = Counter()
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == attr.METRIC_RECIPIENTS:
                    for point in metric.data.data_points:
                        totals[point.attributes[attr.LABEL_OUTCOME]] += point.value
    assert totals == {"accepted": THREADS * SENDS}
