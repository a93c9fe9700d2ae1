"""Per-span overhead of mailscope's pipeline, against the bare SDK and a hand-rolled peer.

Rows (each op is one operation wrapped the way its approach wraps it):
  A  bare SDK span: BatchSpanProcessor + a no-op exporter (a local root span that is
     not a mailscope operation and carries no address).
  B  the same span through mailscope's full pipeline (processors.chain.build_pipeline:
     early redaction, slow, memory, operation_metrics, redaction; error stages are
     skipped on a healthy span). It is not a mailscope operation, so by default the
     memory stage leaves it alone: what every span of every other instrumentation pays.
     Goal (1): B/A <= 1.15.
  A-op  a bare SDK span with a mailscope operation's name and attributes.
  B-op  the same span through the full pipeline: memory delta (two RSS reads), the
     `mailscope.operation.duration` record and the copy carrying the new attributes.
     Goal (2): B-op/A-op <= 1.40.
  C  an error span (a refused recipient, exception recorded) through the full pipeline,
     against A-err, the same bare SDK error span. Goal (3): C/A-err <= 1.40.
  D  the hand-rolled approach: psutil.Process().memory_info() at start and end, two
     structured (JSON) log lines written to a file per operation, a list of durations.
Informational rows: a child span bare and with the pipeline, and F, the floor of
goal (2): a span processor that does nothing but the two /proc/self/statm reads a
memory delta needs (no stage, no copy), on the operation span. F/A-op is what any
pipeline that measures memory pays on this machine before doing anything else,
and D/A bounds D/B from above, since B includes A. Each stage alone, on the
operation span, shows where B-op's overhead goes.

A real SDK MeterProvider is installed, so metric records cost what they cost in
production.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import tempfile
import time

from benchmarks.harness import CPU_CLOCK, Ratio, Section, interleaved, sdk_providers

# room for a whole repeat, so no case drops spans when its worker thread falls behind
QUEUE = 1 << 16


def _install_meter_provider():
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    if not type(metrics.get_meter_provider()).__module__.startswith("opentelemetry.sdk"):
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))


def _bare_tracer():
    provider = sdk_providers(max_queue_size=QUEUE)[0]
    return provider, provider.get_tracer("bench")


def _mailscope_tracer(pipeline):
    provider = sdk_providers(pipeline=pipeline, max_queue_size=QUEUE)[0]
    return provider, provider.get_tracer("bench")


ATTRIBUTES = {"order.id": 1234, "email.template.name": "welcome"}
OPERATION = "email.personalize"
OPERATION_ATTRIBUTES = {
    "mailscope.operation": "personalize", "email.template.name": "welcome", "email.template.engine": "jinja2",
}


def _ok_case(tracer, name="handle-order", attributes=ATTRIBUTES):
    def case(ops):
        start = tracer.start_as_current_span
        for _ in range(ops):
            with start(name, attributes=attributes):
                pass

    return case


def _operation_case(tracer):
    return _ok_case(tracer, OPERATION, OPERATION_ATTRIBUTES)


def _child_case(tracer):
    def case(ops):
        start = tracer.start_as_current_span
        with start("request"):
            for _ in range(ops):
                with start("SELECT orders", attributes=ATTRIBUTES):
                    pass

    return case


def _refused():
    return smtplib.SMTPRecipientsRefused({"someone@example.com": (550, b"5.1.1 User unknown")})


def _error_case(tracer):
    def case(ops):
        start = tracer.start_as_current_span
        for _ in range(ops):
            try:
                with start("email.send", attributes=ATTRIBUTES):
                    raise _refused()
            except smtplib.SMTPRecipientsRefused:
                pass

    return case


class RssReadsOnly:
    """The floor of a memory delta: two RSS reads per mailscope operation span, nothing else."""

    def __init__(self, downstream):
        from mailscope.processors.rss import RssReader

        self.downstream = downstream
        self.read = RssReader().read
        self.open = {}

    def on_start(self, span, parent_context=None):
        if "mailscope.operation" in span.attributes:
            self.open[span.context.span_id] = self.read()

    def _on_ending(self, span):
        pass

    def on_end(self, span):
        start = self.open.pop(span.context.span_id, None)
        if start is not None:
            self.delta = self.read() - start
        self.downstream.on_end(span)

    def shutdown(self):
        self.downstream.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.downstream.force_flush(timeout_millis)


def _floor_tracer():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from benchmarks.harness import DropExporter

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(RssReadsOnly(BatchSpanProcessor(DropExporter(), max_queue_size=QUEUE)))
    return provider, provider.get_tracer("bench")


class HandRolled:
    """What many teams write instead of tracing: a timing/memory/log context manager."""

    def __init__(self, path):
        self.logger = logging.getLogger(f"bench.handrolled.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.handler = logging.FileHandler(path)
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        self.logger.addHandler(self.handler)
        self.durations = []

    def run(self, name, fields):
        import psutil

        rss_start = psutil.Process().memory_info().rss
        started = time.perf_counter()
        self.logger.info(json.dumps({"event": "operation.start", "operation": name, "rss": rss_start, **fields}))
        # ... the operation itself would run here ...
        elapsed = time.perf_counter() - started
        rss_end = psutil.Process().memory_info().rss
        self.durations.append(elapsed)
        self.logger.info(json.dumps({
            "event": "operation.end", "operation": name, "duration_ms": round(elapsed * 1000, 3),
            "rss": rss_end, "rss_delta": rss_end - rss_start, **fields,
        }))

    def close(self):
        self.logger.removeHandler(self.handler)
        self.handler.close()


def _hand_rolled_case(peer):
    def case(ops):
        for _ in range(ops):
            peer.run("handle-order", ATTRIBUTES)
        peer.durations.clear()  # keep the benchmark's own memory flat between repeats

    return case


def run(quick: bool) -> Section:
    from mailscope.config import load_settings
    from mailscope.processors.chain import build_pipeline

    _install_meter_provider()
    ops, repeats = (300, 3) if quick else (3000, 9)
    config = load_settings(environ={})
    pipeline = build_pipeline(config)
    providers = []
    bare_provider, bare = _bare_tracer()
    full_provider, full = _mailscope_tracer(pipeline)
    floor_provider, floor = _floor_tracer()
    providers += [bare_provider, full_provider, floor_provider]
    tmp = tempfile.mkdtemp(prefix="mailscope-bench-")
    peer = HandRolled(os.path.join(tmp, "operations.log"))
    cases = {
        "A  bare SDK span (BatchSpanProcessor, no-op exporter)": _ok_case(bare),
        "B  + mailscope pipeline, healthy span, not an operation": _ok_case(full),
        "A-op  bare SDK span, a mailscope operation's attributes": _operation_case(bare),
        "B-op  + mailscope pipeline, operation span (memory delta)": _operation_case(full),
        "C  + mailscope pipeline, error span": _error_case(full),
        "A-err  bare SDK error span": _error_case(bare),
        "D  hand-rolled psutil + 2 JSON log lines + durations list": _hand_rolled_case(peer),
        "A-child  bare SDK child span": _child_case(bare),
        "B-child  + mailscope pipeline, child span": _child_case(full),
        "F  floor: two RSS reads per operation span, nothing else": _operation_case(floor),
    }
    # where the overhead goes: each stage alone in an otherwise empty pipeline, on the
    # operation span (the memory and operation_metrics stages have work) - as A-op and B-op
    from mailscope.processors.pipeline import Pipeline

    solo_pipelines = {"(no stage)": Pipeline([])}
    for stage in build_pipeline(config).stages:
        solo_pipelines[stage.name] = Pipeline([stage])
    for label, solo in solo_pipelines.items():
        provider, tracer = _mailscope_tracer(solo)
        providers.append(provider)
        cases[f"   only {label}"] = _operation_case(tracer)
    try:
        medians = interleaved(cases, ops, repeats, clock=CPU_CLOCK)
    finally:
        peer.close()
        for provider in providers:
            provider.shutdown()
        pipeline.shutdown()
        for solo in solo_pipelines.values():
            solo.shutdown()
    keys = list(cases)
    a, b, a_op, b_op, c, a_err, d, a_child, b_child, f = (medians[k] for k in keys[:10])
    empty = medians["   only (no stage)"]
    per_stage = ", ".join(
        f"{label} {1e6 * (medians[f'   only {label}'] - empty):+.1f}"
        for label in solo_pipelines
        if label != "(no stage)"
    )
    return Section(
        title=f"pipeline: per-span overhead ({ops} ops x {repeats} repeats, medians of process CPU time)",
        rows=[(k, medians[k]) for k in keys],
        ratios=[
            Ratio("(1) B/A  healthy non-operation span vs bare SDK", b / a, "<= 1.15"),
            Ratio("(2) B-op/A-op  operation span, memory delta, vs bare", b_op / a_op, "<= 1.40"),
            Ratio("(3) C/A-err  error span vs bare error span", c / a_err, "<= 1.40"),
            Ratio("F/A-op  floor of (2): RSS reads alone vs bare SDK", f / a_op),
            Ratio("B-child/A-child  child span, pipeline vs bare", b_child / a_child),
            Ratio("D/B  hand-rolled vs mailscope", d / b),
            Ratio("D/A  upper bound of D/B (B includes A)", d / a),
        ],
        notes=[
            f"stages: {', '.join(s.name for s in pipeline.stages)}",
            f"processors with no stage: {1e6 * (empty - a):+.1f} us/span over A",
            f"each stage alone, us/span over no stage (operation span): {per_stage}",
        ],
    )
