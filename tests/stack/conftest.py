"""One run of the production path, shared by the tests of this folder.

    demo producer + worker (`python -m examples.demo --otlp`, under opentelemetry-instrument)
      -> OTLP gRPC -> agent Collector (agent.yaml as shipped; an overlay adds a file exporter:
         the independent truth, every span the agent received)
      -> gateway-0 (gateway.yaml as shipped): load balancing by trace ID over gateway-0 and
         gateway-1 (static resolver from the overlay) -> tail sampling on the owner -> Jaeger v2
      -> gateway-0's Prometheus exporter <- Prometheus (prometheus.yml and alerts.yml as shipped,
         gateway targets from file_sd files)

Mid-run gateway-0, the agent's only next hop, is stopped for OUTAGE_S seconds and started again.
The tests compare what Jaeger answers with the agent's file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.collector import scrape_totals
from tests.support.jaeger import JaegerQuery, file_spans
from tests.support.prometheus_server import PrometheusServer
from tests.support.stack import LocalStack

REPO = Path(__file__).resolve().parents[2]
SAMPLING_PERCENTAGE = 25
# A trace's spans must all reach its gateway within decision_wait of its first span. An email's
# trace lasts as long as it waits in the queue: small campaigns keep that short (about 2 s here),
# many campaigns give enough traces for the sampled share.
DECISION_WAIT_S = 10
SUBSCRIBERS = 30
CAMPAIGNS = 12
FAULT_AFTER_CAMPAIGN = 6  # gateway-0 stops once campaign 6 is queued
OUTAGE_S = 5
# the agent's own counters that say what an outage cost (the Collector's :8888 telemetry)
AGENT_LOSS_METRICS = (
    "otelcol_exporter_sent_spans_total",
    "otelcol_exporter_send_failed_spans_total",
    "otelcol_exporter_enqueue_failed_spans_total",
    "otelcol_exporter_queue_size",
    "otelcol_receiver_refused_spans_total",
)


@dataclass
class StackRun:
    stack: LocalStack
    prom: PrometheusServer
    jaeger: JaegerQuery
    demo: subprocess.CompletedProcess
    output: Path
    started: float
    finished: float
    stop_at: float
    restart_at: float
    agent_before: dict
    agent_after: dict
    truth: dict = field(default_factory=dict)  # trace id -> {span id: span}
    kept: dict = field(default_factory=dict)  # what Jaeger answers: trace id -> {span id: span}

    def outage_affected(self, spans: dict) -> bool:
        """A trace with a span in flight while gateway-0 was down or holding it for its decision."""
        first = min(s["start_ns"] for s in spans.values()) / 1e9
        last = max(s["end_ns"] for s in spans.values()) / 1e9
        return last >= self.stop_at - DECISION_WAIT_S - 5 and first <= self.restart_at + 2

    def longest(self, traces: dict) -> float:
        """The longest of these traces, first span start to last span end, in seconds."""
        return max(((max(s["end_ns"] for s in spans.values()) - min(s["start_ns"] for s in spans.values())) / 1e9
                    for spans in traces.values()), default=0.0)

    def considered(self) -> dict:
        return {t: spans for t, spans in self.truth.items() if not self.outage_affected(spans)}

    def after_restart(self) -> dict:
        return {t: spans for t, spans in self.truth.items()
                if min(s["start_ns"] for s in spans.values()) / 1e9 > self.restart_at + 2}


def by_trace(spans) -> dict:
    traces: dict = {}
    for span in spans:
        traces.setdefault(span["trace_id"], {})[span["span_id"]] = span
    return traces


def _demo_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MAILSCOPE_", "NEWSLETTER_"))}
    env["OTEL_BSP_SCHEDULE_DELAY"] = "500"
    env["OTEL_METRIC_EXPORT_INTERVAL"] = "2000"
    return env


def _settled(jaeger: JaegerQuery, start: float, timeout: float) -> dict:
    """Jaeger's traces once two answers a few seconds apart agree (the gateways decided and flushed)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        services = [name for name in jaeger.services() if name != "jaeger"]
        spans = [s for service in services for s in jaeger.find_spans(service, start, time.time() + 60)]
        current = by_trace(spans)
        count = sum(len(v) for v in current.values())
        if last is not None and count == last and count > 0:
            return current
        if time.monotonic() > deadline:
            return current
        last = count
        time.sleep(DECISION_WAIT_S / 2)


@pytest.fixture(scope="session")
def stack_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    stack = LocalStack(tmp / "services", sampling_percentage=SAMPLING_PERCENTAGE, decision_wait=f"{DECISION_WAIT_S}s",
                       record=True)
    prom = None
    try:
        prom_dir = tmp / "prometheus"
        shipped = stack.prometheus_folder(prom_dir, scrape_interval="1s")
        prom = PrometheusServer(prom_dir, config_text=shipped)  # prometheus.yml as shipped, unedited
        started = time.time()
        demo = subprocess.Popen(
            [sys.executable, "-m", "examples.demo", "--subscribers", str(SUBSCRIBERS), "--campaigns", str(CAMPAIGNS),
             "--output", str(tmp / "demo"), "--otlp", stack.agent_otlp, "--timeout", "300"],
            cwd=REPO, env=_demo_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        lines = []
        stop_at = restart_at = None
        agent_before = agent_after = {}
        for line in demo.stdout:
            lines.append(line)
            if stop_at is None and line.startswith(f"[demo] campaign {FAULT_AFTER_CAMPAIGN}:"):
                agent_before = scrape_totals(stack.agent_metrics_url)
                stop_at = time.time()
                stack.gateways[0].stop()
                time.sleep(OUTAGE_S)
                stack.gateways[0].start()
                restart_at = time.time()
        code = demo.wait(60)
        finished = time.time()
        done = subprocess.CompletedProcess(demo.args, code, "".join(lines), "")
        assert stop_at is not None, f"the demo never reached campaign {FAULT_AFTER_CAMPAIGN}:\n{done.stdout[-3000:]}"

        jaeger = JaegerQuery(stack.jaeger_url)
        time.sleep(DECISION_WAIT_S + 4)  # the last traces' decisions, then the batches
        kept = _settled(jaeger, started - 60, timeout=90)
        agent_after = scrape_totals(stack.agent_metrics_url)
        run = StackRun(stack, prom, jaeger, done, tmp / "demo", started, finished, stop_at, restart_at,
                       agent_before, agent_after, by_trace(file_spans(stack.truth_path)), kept)
        yield run
    finally:
        if prom is not None:
            prom.stop()
        stack.stop()


def demo_outcomes(stdout: str) -> list[tuple[int, int]]:
    """(done, expected) of each campaign's last progress line."""
    return [(int(a), int(b)) for a, b in re.findall(r"\[demo\]\s+(\d+)/(\d+) messages done", stdout)]
