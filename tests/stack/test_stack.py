"""The production path, run for real: services -> agent -> two gateways -> Jaeger v2, and Prometheus.

See conftest.py for the run. Jaeger's answers are compared with the agent's own file of every
span it received (the independent truth).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time

import pytest
import yaml

from tests.stack.conftest import (
    AGENT_LOSS_METRICS,
    CAMPAIGNS,
    DECISION_WAIT_S,
    SAMPLING_PERCENTAGE,
    SUBSCRIBERS,
    demo_outcomes,
)
from tests.support.dashboard_queries import run_dashboard
from tests.support.jaeger import file_spans
from tests.support.stack import OTEL, shipped_rule_files

# the first test also pays for the shared run (about a minute here; more on a loaded machine)
pytestmark = pytest.mark.timeout(600)

DASHBOARD = OTEL / "grafana" / "dashboards" / "email-pipeline.json"


def _is_error(span) -> bool:
    return span["status_code"] == "ERROR"


def _is_slow(span) -> bool:
    return span["attributes"].get("mailscope.slow") == {"boolValue": True}


def _must_keep(spans: dict) -> bool:
    return any(_is_error(s) or _is_slow(s) for s in spans.values())


def _binomial_interval(n: int, p: float, confidence: float = 0.999) -> tuple[int, int]:
    """The smallest and largest counts a two-sided `confidence` interval of Binomial(n, p) allows."""
    tail = (1 - confidence) / 2
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    low, cumulative = 0, 0.0
    while cumulative + pmf[low] <= tail:
        cumulative += pmf[low]
        low += 1
    high, cumulative = n, 0.0
    while cumulative + pmf[high] <= tail:
        cumulative += pmf[high]
        high -= 1
    return low, high


def test_the_demo_ran_through_the_outage_with_its_results_unchanged(stack_run):
    out = stack_run.demo.stdout
    assert stack_run.demo.returncode == 0, out[-4000:]
    outcomes = demo_outcomes(out)
    # every campaign's every message reached a final outcome, the one during the outage too
    finals = {}
    for done, expected in outcomes:
        finals[expected] = done
    assert all(done == expected for expected, done in finals.items()), outcomes
    assert len(finals) == CAMPAIGNS and all(f"[demo] campaign {n}:" in out for n in range(1, CAMPAIGNS + 1))
    assert re.search(r"\[demo\] stopped producer, worker, .*redis-server", out), out[-2000:]
    assert stack_run.stack.agent.running() and all(g.running() for g in stack_run.stack.gateways)


def test_the_shipped_collector_configs_start_without_deprecation_warnings(stack_run):
    """An on-call engineer reading a Collector's log should not have to skip our own warnings:
    the v0.161 build warns at every start for the old exporter names `otlp` and `loadbalancing`."""
    collectors = [stack_run.stack.agent, *stack_run.stack.gateways]
    warned = [line for c in collectors for line in c.log().splitlines() if "\twarn\t" in line and "deprecated" in line]
    assert not warned, warned[:3]
    assert all("Everything is ready" in c.log() for c in collectors)  # the logs are the real ones


def test_the_outage_cost_as_the_agent_counts_it(stack_run, capsys):
    before, after = stack_run.agent_before, stack_run.agent_after
    with capsys.disabled():
        print(f"\n[stack] gateway-0 down for {stack_run.restart_at - stack_run.stop_at:.1f}s; the agent's own counters"
              " (before the stop -> after the run):")
        for name in AGENT_LOSS_METRICS:
            print(f"[stack]   {name}: {before.get(name, 0):.0f} -> {after.get(name, 0):.0f}")
        overlapped = {t: spans for t, spans in stack_run.truth.items() if stack_run.outage_affected(spans)}
        must_keep = {t: spans for t, spans in overlapped.items() if _must_keep(spans)}
        lost = [t for t, spans in must_keep.items() if set(stack_run.kept.get(t, {})) != set(spans)]
        print(f"[stack]   {len(overlapped)} traces overlapped the outage; of their {len(must_keep)} error/slow traces, "
              f"{len(lost)} are missing or incomplete in Jaeger")
    # the agent kept receiving and sending through the outage
    assert after.get("otelcol_exporter_sent_spans_total", 0) > before.get("otelcol_exporter_sent_spans_total", 0)
    assert after.get("otelcol_receiver_refused_spans_total", 0) == 0


def test_every_error_and_slow_trace_is_in_jaeger_complete(stack_run):
    considered = stack_run.considered()
    must_keep = {t: spans for t, spans in considered.items() if _must_keep(spans)}
    errors = [t for t, spans in must_keep.items() if any(_is_error(s) for s in spans.values())]
    slow = [t for t, spans in must_keep.items() if any(_is_slow(s) for s in spans.values())]
    assert len(errors) >= 10 and len(slow) >= 5, (len(errors), len(slow))
    incomplete = {
        t: (len(spans), len(stack_run.kept.get(t, {})))
        for t, spans in must_keep.items() if set(stack_run.kept.get(t, {})) != set(spans)
    }
    assert incomplete == {}, (
        f"{len(incomplete)} of {len(must_keep)} error/slow traces missing or incomplete (spans in the file, in "
        f"Jaeger): {list(incomplete.items())[:10]}; the longest of them lasted "
        f"{stack_run.longest({t: must_keep[t] for t in incomplete}):.1f}s (decision_wait {DECISION_WAIT_S}s)"
    )


def test_traces_started_after_the_restart_arrive_complete(stack_run):
    after = stack_run.after_restart()
    kept = {t: spans for t, spans in after.items() if t in stack_run.kept}
    assert any(_must_keep(spans) for spans in after.values())
    assert all(t in stack_run.kept for t, spans in after.items() if _must_keep(spans))
    incomplete = [t for t, spans in kept.items() if set(stack_run.kept[t]) != set(spans)]
    assert kept and incomplete == []


def test_kept_healthy_traces_are_the_configured_share(stack_run, capsys):
    considered = stack_run.considered()
    healthy = [t for t, spans in considered.items() if not _must_keep(spans)]
    kept = [t for t in healthy if t in stack_run.kept]
    low, high = _binomial_interval(len(healthy), SAMPLING_PERCENTAGE / 100)
    with capsys.disabled():  # on record for every run: a drift shows before it fails
        print(f"\n[stack] healthy traces kept: {len(kept)} of {len(healthy)} (configured {SAMPLING_PERCENTAGE}%, "
              f"99.9% interval [{low}, {high}]); {_kept_share_by_gateway_and_time(stack_run, healthy)}")
    assert len(healthy) >= 150, len(healthy)
    assert low <= len(kept) <= high, (
        f"{len(kept)} of {len(healthy)} healthy traces kept; 99.9% interval [{low}, {high}]; "
        f"{_kept_share_by_gateway_and_time(stack_run, healthy)}"
    )
    # a kept trace is kept whole
    partial = [t for t in kept if set(stack_run.kept[t]) != set(considered[t])]
    assert partial == []


def _kept_share_by_gateway_and_time(stack_run, healthy) -> str:
    """Kept / healthy per gateway and per quarter of the run: a loss that is not chance shows up in one of them."""
    owner = {}
    for index, path in enumerate(stack_run.stack.owned_paths):
        for span in file_spans(path):
            owner.setdefault(span["trace_id"], index)
    starts = {t: min(s["start_ns"] for s in stack_run.truth[t].values()) for t in healthy}
    first, last = min(starts.values(), default=0), max(starts.values(), default=0)
    width = max(1, (last - first) / 4)
    cells: dict = {}
    for t in healthy:
        for key in (f"gateway-{owner.get(t, '?')}", f"q{min(3, int((starts[t] - first) / width)) + 1}"):
            seen, kept = cells.get(key, (0, 0))
            cells[key] = (seen + 1, kept + (t in stack_run.kept))
    return ", ".join(f"{key} {kept}/{seen}" for key, (seen, kept) in sorted(cells.items()))


def test_jaeger_holds_only_what_the_services_sent(stack_run):
    truth_spans = {sid for spans in stack_run.truth.values() for sid in spans}
    extra = [sid for spans in stack_run.kept.values() for sid in spans if sid not in truth_spans]
    assert extra == []


def test_no_trace_is_split_between_gateways(stack_run):
    owners: dict = {}
    for index, path in enumerate(stack_run.stack.owned_paths):
        for span in file_spans(path):
            owners.setdefault(span["trace_id"], set()).add(index)
    split = [t for t, where in owners.items() if len(where) > 1]
    assert split == [], f"{len(split)} of {len(owners)} traces reached more than one gateway"
    # and the routing does spread the traces over both instances
    per_gateway = [sum(1 for where in owners.values() if index in where) for index in range(2)]
    assert min(per_gateway) >= 0.25 * len(owners), per_gateway


JAEGER_NOTES = "@jaeger@"  # e.g. @jaeger@warnings, added by Jaeger's query service
TYPED = {
    "mailscope.error.category": "stringValue",
    "mailscope.error.fingerprint": "stringValue",
    "mailscope.error.retryable": "boolValue",
    "mailscope.slow": "boolValue",
    "mailscope.memory.rss_delta_bytes": "intValue",
    "email.recipients.count": "intValue",
    "email.recipients.domains": "arrayValue",
    "email.template.name": "stringValue",
    "email.template.cache_hit": "boolValue",
    "email.personalization.missing": "intValue",
    "email.content.bytes": "intValue",
    "email.provider": "stringValue",
    "email.message.bytes": "intValue",
}


def test_mailscope_attributes_arrive_with_their_types(stack_run):
    seen = {key: set() for key in TYPED}
    differ = []
    for trace_id, spans in stack_run.kept.items():
        for span_id, span in spans.items():
            truth = stack_run.truth[trace_id][span_id]
            # Jaeger's own notes (clock skew it saw between a consumer and its producer) aside
            attributes = {k: v for k, v in span["attributes"].items() if not k.startswith(JAEGER_NOTES)}
            if attributes != truth["attributes"]:
                keys = set(truth["attributes"]) | set(attributes)
                differ.append((span["name"], {k: (truth["attributes"].get(k), attributes.get(k)) for k in keys
                                              if attributes.get(k) != truth["attributes"].get(k)}))
            for key in TYPED:
                if key in span["attributes"]:
                    seen[key] |= set(span["attributes"][key])
            assert span["resource"].get("telemetry.distro.name") == {"stringValue": "mailscope"}, span["resource"]
    assert differ == [], f"{len(differ)} spans whose attributes Jaeger changed: {differ[:5]}"
    assert {key: types for key, types in seen.items() if types != {TYPED[key]}} == {}


def _subscriber_addresses(output) -> list[str]:
    with sqlite3.connect(output / "data" / "newsletter.db") as db:
        return [row[0] for row in db.execute("select email from subscribers")]


def test_no_recipient_address_in_jaegers_answers(stack_run):
    jaeger = stack_run.jaeger
    for trace_id in list(stack_run.kept)[:50]:  # Jaeger's own model too
        assert jaeger.trace_v1(trace_id).get("data")
    text = "\n".join(jaeger.answers).lower()
    addresses = _subscriber_addresses(stack_run.output)
    assert len(addresses) == SUBSCRIBERS
    leaked = [a for a in addresses if a.lower() in text or a.split("@")[0].lower() in text]
    assert leaked == [], f"{len(leaked)} subscriber addresses (or local parts) in Jaeger's answers"
    # the domains may appear, and do: the answers are not empty
    assert "email.recipients.domains" in text


def _wait_for_gateway_metrics(run):
    """Until Prometheus scraped the gateway after the run's last export (the shipped 15 s interval)."""
    prom = run.prom

    def fed():
        jobs = {item["metric"].get("job") for item in prom.query("count by (job) (mailscope_operation_duration_seconds_count)")}
        last = [float(item["value"][1]) for item in prom.query('timestamp(up{job="otel-gateway-exporter"} == 1)')]
        return jobs >= {"newsletter-producer", "newsletter-worker"} and last and min(last) > run.finished + 5

    return prom.wait_for(fed, timeout=60, interval=1)


def test_every_dashboard_panel_has_data_through_the_gateway(stack_run):
    prom = stack_run.prom
    _wait_for_gateway_metrics(stack_run)
    # the data comes from the gateway's exporter: no service is scraped directly here
    scraped = {item["metric"]["job"] for item in prom.query("up == 1")}
    assert not scraped & {"newsletter-producer", "newsletter-worker"}, scraped
    dashboard = json.loads(DASHBOARD.read_text())
    empty, evaluated, values = run_dashboard(prom, dashboard, stack_run.started, time.time())
    assert {"newsletter-producer", "newsletter-worker"} <= set(values["service"]), values
    assert "otel-collector" not in values["service"]  # the Collectors' own target_info is not a service
    assert "newsletter:email-queue" in values["queue"], values
    assert evaluated >= 15
    # every panel, Process RSS too: process.memory.usage comes over OTLP like mailscope's metrics
    assert empty == [], "panels without data through the gateway:\n" + "\n".join(empty)


def test_every_alert_rule_evaluates_without_error_through_the_gateway(stack_run):
    prom = stack_run.prom
    _wait_for_gateway_metrics(stack_run)

    def evaluated():
        rules = [rule for group in prom.rules() for rule in group["rules"]]
        return rules if rules and all(rule.get("health") != "unknown" for rule in rules) else None

    rules = prom.wait_for(evaluated, timeout=40, interval=1)
    shipped = [rule for path in shipped_rule_files() for group in yaml.safe_load(path.read_text())["groups"]
               for rule in group["rules"]]
    assert len(rules) == len(shipped) >= 7
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
