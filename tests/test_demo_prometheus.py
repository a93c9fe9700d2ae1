"""The demo, end to end, with a real Prometheus scraping it, and every dashboard query run on that data.

One module-scoped run: Debian's `prometheus` on a free loopback port scrapes the producer's and
the worker's /metrics (1 s interval) and evaluates alerts.yml; `python -m examples.demo` runs two
campaigns (waiting after each until Prometheus has scraped both services, so every counter has
a before and an after), then stops everything and prints the report. Then:
- every PromQL expression of every dashboard panel, with the dashboard's variables set to the
  values its own variable queries return, must return a finite value over the run;
- the alert rules evaluate on that data without errors;
- the exported traces hold the pipeline's spans and no subscriber address; no metric label holds one.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailscope import attributes as attr
from tests.support.dashboard_queries import run_dashboard
from tests.support.launcher import free_port
from tests.support.prometheus_server import PrometheusServer, prometheus_binary

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "otel-config" / "grafana" / "dashboards" / "email-pipeline.json"
ALERTS = REPO / "otel-config" / "prometheus" / "alerts.yml"
QUEUE = "newsletter:email-queue"
JOBS = ("newsletter-producer", "newsletter-worker")

pytestmark = pytest.mark.skipif(prometheus_binary() is None, reason="prometheus is not installed (make test installs it)")


@dataclass
class DemoRun:
    done: subprocess.CompletedProcess
    prom: PrometheusServer
    started: float
    output: Path

    def last_up(self) -> float:
        """The last moment both services were up and scraped (the processes are gone afterwards)."""
        stamps = []
        for job in JOBS:
            series = self.prom.query_range(f'up{{job="{job}"}} == 1', self.started - 5, time.time(), step="1s")
            assert series, f"Prometheus never scraped {job}"
            stamps.append(max(float(t) for t, _ in series[0]["values"]))
        return min(stamps)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    ports = {"producer": free_port(), "worker": free_port()}
    targets = {f"newsletter-{name}": [f"127.0.0.1:{port}"] for name, port in ports.items()}
    prom = PrometheusServer(tmp / "prometheus", scrape_targets=targets, scrape_interval="1s", rule_files=[ALERTS])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MAILSCOPE_", "NEWSLETTER_"))}
    started = time.time()
    try:
        done = subprocess.run(
            [
                sys.executable, "-m", "examples.demo",
                "--subscribers", "30", "--campaigns", "2", "--output", str(tmp / "out"),
                "--producer-port", str(ports["producer"]), "--worker-port", str(ports["worker"]),
                "--prometheus", prom.url, "--timeout", "150",
            ],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
        )
        yield DemoRun(done, prom, started, tmp / "out")
    finally:
        prom.stop()


def test_demo_runs_end_to_end_and_prints_the_report(demo):
    out = demo.done.stdout
    assert demo.done.returncode == 0, out + demo.done.stderr
    assert "[demo] campaign 1:" in out and "[demo] campaign 2:" in out
    assert re.search(r"\[demo\]\s+(\d+)/\1 messages done", out)
    assert "[demo] stopped producer, worker, SMTP sink, redis-server" in out
    assert "did not scrape" not in out
    traces = sorted((demo.output / "traces").glob("*.jsonl"))
    assert [p.name for p in traces] == ["producer.jsonl", "worker.jsonl"]
    assert all(p.stat().st_size > 0 for p in traces)
    assert f"[demo] trace files: {traces[0]}, {traces[1]}" in out
    # the report names the campaign template's missing variable and the worker's leak
    templates = out.split("\nTEMPLATES", 1)[1].split("\nRECOMMENDATIONS", 1)[0]
    assert re.search(r"weekly_digest\S*\s+referral_code\s+\d+", templates), templates
    assert re.search(r"\[warning\] process \S+: resident memory grew", out)


def test_every_dashboard_query_returns_data_from_the_demo(demo):
    assert demo.done.returncode == 0, demo.done.stdout + demo.done.stderr
    dashboard = json.loads(DASHBOARD.read_text())
    empty, evaluated, values = run_dashboard(demo.prom, dashboard, demo.started, demo.last_up(), step="2s")
    # the variable queries find the demo's two services and its queue
    assert set(JOBS) <= set(values["service"]), values
    assert QUEUE in values["queue"], values
    assert evaluated >= 15
    assert empty == [], "panels without data:\n" + "\n".join(empty)


def test_alert_rules_evaluate_cleanly_on_the_demo_data(demo):
    prom = demo.prom

    def evaluated():
        rules = [rule for group in prom.rules() for rule in group["rules"]]
        return rules if rules and all(rule.get("health") != "unknown" for rule in rules) else None

    rules = prom.wait_for(evaluated, timeout=30)
    assert len(rules) == 7
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


def _subscriber_addresses(output: Path) -> list[str]:
    with sqlite3.connect(output / "data" / "newsletter.db") as db:
        return [row[0] for row in db.execute("select email from subscribers")]


def test_traces_hold_the_pipeline_and_no_subscriber_address(demo):
    from mailscope.exporters.otlp_file import SpanReader

    assert demo.done.returncode == 0, demo.done.stdout + demo.done.stderr
    files = sorted(str(p) for p in (demo.output / "traces").glob("*.jsonl"))
    spans = list(SpanReader(files))
    names = {span["name"] for span in spans}
    expected = {
        attr.SPAN_TEMPLATE_LOAD,
        attr.SPAN_PERSONALIZE,
        attr.SPAN_SEND,
        attr.queue_span_name(attr.OP_QUEUE_PUBLISH, QUEUE),
        attr.queue_span_name(attr.OP_QUEUE_RECEIVE, QUEUE),
        attr.queue_span_name(attr.OP_QUEUE_PROCESS, QUEUE),
    }
    assert expected <= names, sorted(expected - names)
    # the failure knobs show up as real, categorized errors on send spans
    categories = {s["attributes"].get(attr.ERROR_CATEGORY) for s in spans if s["name"] == attr.SPAN_SEND}
    assert {"recipient", "mailbox_full"} <= categories, categories
    # the template with the missing variable is visible
    assert any(s["attributes"].get(attr.PERSONALIZATION_MISSING) for s in spans if s["name"] == attr.SPAN_PERSONALIZE)
    # the worker's sends continue the producer's traces across the queue
    producer_traces = {s["trace_id"] for s in spans if s["resource"].get("service.name") == "newsletter-producer"}
    sends = [s for s in spans if s["name"] == attr.SPAN_SEND]
    assert sends and sum(s["trace_id"] in producer_traces for s in sends) >= len(sends) * 0.9
    # MAILSCOPE_OPERATIONS makes the producer's per-recipient step a personalize operation: its
    # profile and product queries are inside it, so the report can tell database from render time
    steps = {
        s["span_id"] for s in spans
        if s["name"] == attr.SPAN_PERSONALIZE and s["attributes"].get(attr.TEMPLATE_ENGINE) == "custom"
    }
    assert steps
    queries_inside = [s for s in spans if s["parent_span_id"] in steps and attr.DB_SYSTEM in s["attributes"]]
    assert len(queries_inside) >= 2 * len(steps)  # the profile and the product lookups

    addresses = _subscriber_addresses(demo.output)
    assert len(addresses) == 30
    text = "\n".join(Path(f).read_text(errors="replace") for f in files).lower()
    leaked = [a for a in addresses if a.lower() in text or a.split("@")[0].lower() in text]
    assert leaked == [], f"{len(leaked)} subscriber addresses (or local parts) in exported traces"


def test_no_metric_label_holds_an_address(demo):
    assert demo.done.returncode == 0
    series = demo.prom.api("series", **{"match[]": '{__name__=~"mailscope_.+"}', "start": f"{demo.started:.0f}"})
    assert series, "no mailscope series reached Prometheus"
    values = {value for item in series for key, value in item.items() if key != "__name__"}
    assert [v for v in values if "@" in v] == []
