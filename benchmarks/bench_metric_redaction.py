"""Metric label redaction: what it costs per span and email, and per collection.

Metric labels are redacted when a reader collects (exporters/metric_redaction.py),
never when a measurement is recorded. Per email, the cases below do what an
instrumented send does with metrics: one span through mailscope's full
enrichment chain (BatchSpanProcessor, no-op exporter), one histogram record and
one counter add labelled with a per-recipient queue key (`email_queue:<address>`,
100 distinct keys), and a collection every `EMAILS_PER_COLLECTION` emails (one
collection per minute, the SDK default, at 17 emails a second: a quiet service;
busier ones spread a collection over more emails). The two cases differ only in
the reader: plain, or wrapped by mailscope's redaction.

The collection rows time one collection of those 100 series (2 metrics),
plain and redacted, the label sets already cached (every collection after the
first): redacting rewrites and merges the 200 points into 2.
"""

from __future__ import annotations

from benchmarks.harness import CPU_CLOCK, Ratio, Section, interleaved, sdk_providers

EMAILS_PER_COLLECTION = 1000
KEYS = [f"email_queue:user{i}@example.org" for i in range(100)]
DESTINATION = "messaging.destination.name"


def _metrics(redacted: bool):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from mailscope.exporters.metric_redaction import MetricRedactor, wrap_reader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    if redacted:
        wrap_reader(reader, MetricRedactor("domain"))
    meter = provider.get_meter("bench")
    histogram = meter.create_histogram("mailscope.queue.wait", unit="s")
    counter = meter.create_counter("sends")
    for key in KEYS:  # every series exists before timing starts
        histogram.record(0.01, {DESTINATION: key})
        counter.add(1, {DESTINATION: key})
    reader.get_metrics_data()
    return provider, reader, histogram, counter


def run(quick: bool) -> Section:
    ops, repeats = (3000, 3) if quick else (20000, 7)
    tracer_provider, _ = sdk_providers(with_pipeline=True)
    tracer = tracer_provider.get_tracer("bench")
    plain = _metrics(redacted=False)
    redacting = _metrics(redacted=True)

    def per_email(metrics):
        _, reader, histogram, counter = metrics

        def case(n):
            for i in range(n):
                key = KEYS[i % 100]
                with tracer.start_as_current_span("email.send", attributes={"mailscope.operation": "send",
                                                                          DESTINATION: key}):
                    histogram.record(0.02, {DESTINATION: key})
                    counter.add(1, {DESTINATION: key})
                if i % EMAILS_PER_COLLECTION == EMAILS_PER_COLLECTION - 1:
                    reader.get_metrics_data()

        return case

    def collections(metrics):
        reader = metrics[1]

        def case(n):
            for _ in range(n):
                reader.get_metrics_data()

        return case

    try:
        emails = interleaved({"per email, plain reader": per_email(plain),
                              "per email, redacting reader": per_email(redacting)}, ops, repeats, clock=CPU_CLOCK)
        collected = interleaved({"one collection of 100 series x 2 metrics, plain": collections(plain),
                                 "one collection of 100 series x 2 metrics, redacted": collections(redacting)},
                                max(20, ops // 200), repeats, clock=CPU_CLOCK)
    finally:
        tracer_provider.shutdown()
        for provider, *_ in (plain, redacting):
            provider.shutdown()

    section = Section("metric label redaction: per email (span + 2 metric records) and per collection")
    section.rows = list(emails.items()) + list(collected.items())
    added = collected["one collection of 100 series x 2 metrics, redacted"] - \
        collected["one collection of 100 series x 2 metrics, plain"]
    section.ratios = [
        Ratio("per email: redacting reader / plain reader",
              emails["per email, redacting reader"] / emails["per email, plain reader"], "<= 1.05"),
        Ratio("per collection: redacted / plain", collected["one collection of 100 series x 2 metrics, redacted"]
              / collected["one collection of 100 series x 2 metrics, plain"]),
    ]
    section.notes = [
        f"redaction adds {added * 1e6:.0f} us per collection of 200 points "
        f"({added / EMAILS_PER_COLLECTION * 1e6:.3f} us per email at one collection per "
        f"{EMAILS_PER_COLLECTION} emails); nothing is added when a measurement is recorded",
    ]
    return section
