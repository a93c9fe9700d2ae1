"""The delivery alert rules (otel-config/prometheus/alerts-delivery.yml) and dashboard
(otel-config/grafana/dashboards/email-delivery.json).

- promtool checks the rules and runs their unit tests, which show each rule firing and clearing;
  breaking any rule makes those unit tests fail;
- rules and panels use only metric and label names mailscope exports;
- live: the receiver runs under opentelemetry-instrument with a Prometheus endpoint, signed
  events are posted to it, a real Prometheus scrapes it and evaluates the rules; every panel's
  query then returns data and every rule evaluates cleanly.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from mailscope import attributes as attr
from mailscope.delivery import tracking
from tests.support import delivery_events as de
from tests.support import otel_config_checks as checks
from tests.support.delivery_receiver import HOST, receiver_process
from tests.support.launcher import base_env, free_port
from tests.support.prometheus_server import PrometheusServer, prometheus_binary

REPO = Path(__file__).resolve().parents[2]
PROM_DIR = REPO / "otel-config" / "prometheus"
RULES = PROM_DIR / "alerts-delivery.yml"
DASHBOARD = REPO / "otel-config" / "grafana" / "dashboards" / "email-delivery.json"
DATASOURCES = REPO / "otel-config" / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
JOB = "webhooks"

DELIVERY_SERIES = (
    {"mailscope_delivery_events_total", "mailscope_delivery_rejected_requests_total"}
    | {f"mailscope_delivery_latency_seconds{s}" for s in ("_bucket", "_sum", "_count")}
)
DELIVERY_LABELS = {attr.DELIVERY_STATUS.replace(".", "_"), attr.LABEL_REASON}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed here (`make test` installs it as root)")
    return path


def alert_rules(doc=None) -> list:
    doc = doc or yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def name_problems(expr: str, where: str) -> list:
    metrics, labels = checks.promql_names(expr)
    problems = [f"{where}: unknown metric {m}"
                for m in sorted(metrics - checks.CONTRACT_SERIES - checks.OTHER_SERIES - DELIVERY_SERIES)]
    problems += [f"{where}: unknown label {lb}"
                 for lb in sorted(labels - checks.CONTRACT_LABELS - checks.SCRAPE_LABELS - DELIVERY_LABELS)]
    return problems


def test_promtool_checks_and_unit_tests_fire_and_clear_every_rule():
    done = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "SUCCESS: 3 rules found" in done.stdout, done.stdout + done.stderr
    done = subprocess.run([promtool(), "test", "rules", "alerts-delivery.test.yml"], cwd=PROM_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    tests = yaml.safe_load((PROM_DIR / "alerts-delivery.test.yml").read_text())["tests"]
    rules = {r["alert"]: r for r in alert_rules()}
    assert set(rules) == {"EmailBounceRateHigh", "EmailComplaintRateHigh", "EmailComplaintRateCritical"}
    assert "> 0.05" in rules["EmailBounceRateHigh"]["expr"]
    assert "> 0.001" in rules["EmailComplaintRateHigh"]["expr"] and "> 0.003" in rules["EmailComplaintRateCritical"]["expr"]
    assert rules["EmailComplaintRateCritical"]["labels"]["severity"] == "critical"
    for name in rules:
        cases = [(minutes(case["eval_time"]), bool(case["exp_alerts"])) for test in tests
                 for case in test.get("alert_rule_test", []) if case["alertname"] == name]
        fired = [t for t, fires in cases if fires]
        assert fired and any(not fires and t > fired[0] for t, fires in cases), f"{name} never fires, then clears"


def minutes(duration: str) -> float:
    return sum(int(n) * {"h": 60, "m": 1, "s": 1 / 60}[u] for n, u in re.findall(r"(\d+)([hms])", duration))


@pytest.mark.parametrize("variant", ["never fires", "always fires"])
def test_breaking_any_rule_fails_its_unit_tests(tmp_path, variant):
    original = yaml.safe_load(RULES.read_text())
    shutil.copy(PROM_DIR / "alerts-delivery.test.yml", tmp_path)
    for index, rule in enumerate(alert_rules(original)):
        doc = copy.deepcopy(original)
        alert_rules(doc)[index]["expr"] = "vector(1) < 0" if variant == "never fires" else "vector(1)"
        (tmp_path / "alerts-delivery.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
        done = subprocess.run([promtool(), "test", "rules", "alerts-delivery.test.yml"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and rule["alert"] in done.stdout + done.stderr, (rule["alert"], variant)


def test_rules_and_panels_use_only_names_mailscope_exports():
    problems = []
    for rule in alert_rules():
        problems += name_problems(rule["expr"], rule["alert"])
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {ds["uid"] for ds in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    problems += checks.dashboard_problems(dashboard, uids)
    for panel, target in checks.prometheus_targets(dashboard):
        problems += name_problems(target["expr"], f"{panel['title']} {target['refId']}")
        assert 'job=~"$service"' in target["expr"], panel["title"]
    assert problems == []
    titles = {p["title"]: p for p in checks.dashboard_panels(dashboard)}
    units = {t: p["fieldConfig"]["defaults"]["unit"] for t, p in titles.items() if p["type"] != "row"}
    assert units == {"Delivery outcomes/s by status": "ops", "Delivery latency (p50/p95/p99)": "s",
                     "Bounce rate and complaint rate (1 h)": "percentunit", "Bounces/s by category": "ops",
                     "Complaint rate (24 h)": "percentunit", "Rejected webhook requests/s by reason": "ops"}


@pytest.mark.skipif(prometheus_binary() is None, reason="prometheus is not installed (make test installs it)")
def test_every_panel_and_rule_works_on_a_live_receiver(tmp_path):
    keys = de.WebhookKeys()
    metrics_port, port = free_port(), free_port()
    env = base_env(OTEL_SERVICE_NAME=JOB, OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
                   OTEL_METRICS_EXPORTER="prometheus", OTEL_EXPORTER_PROMETHEUS_HOST=HOST,
                   OTEL_EXPORTER_PROMETHEUS_PORT=metrics_port, **keys.env())
    prom = PrometheusServer(tmp_path / "prometheus", scrape_targets={JOB: [f"{HOST}:{metrics_port}"]},
                            scrape_interval="1s", rule_files=[RULES])
    receiver = receiver_process("wsgi", env, port)
    started = time.time()
    try:
        from opentelemetry.sdk.trace import TracerProvider

        send = TracerProvider().get_tracer("test").start_span(attr.SPAN_SEND)
        send.end()
        value = tracking.value_for(send, sent_at_s=time.time() - 90)
        events = ["delivered"] * 20 + ["bounced"] * 3 + ["deferred", "complained"]
        for batch in (events[::2], events[1::2]):  # two batches, a scrape between them: rates need two samples
            for n, kind in enumerate(batch):
                provider = ("sendgrid", "mailgun", "postmark", "ses")[n % 4]
                body, headers = keys.request(provider, kind, f"m-{kind}-{n}-{len(batch)}", value)
                assert de.post(f"http://{HOST}:{port}/{provider}", body, headers)[0] == 200
            de.post(f"http://{HOST}:{port}/mailgun", b"{}", {})  # a rejected request, counted
            total = 13 if len(batch) == 13 else 25
            prom.wait_for(lambda: prom.query(f'sum(mailscope_delivery_events_total{{job="{JOB}"}}) == {total}'),
                          timeout=60)
        # and two scrapes more, so the last counts have samples after them
        scrapes = f'count_over_time(up{{job="{JOB}"}}[10m])'
        seen = float(prom.query(scrapes)[0]["value"][1])
        prom.wait_for(lambda: prom.query(f"{scrapes} >= {seen + 2}"), timeout=60)
        end = time.time()
        dashboard = json.loads(DASHBOARD.read_text())
        window = f"{int(end - started) + 10}s"
        empty = []
        for panel, target in checks.prometheus_targets(dashboard):
            expr = target["expr"].replace("$__rate_interval", window).replace("$__range", window)
            expr = expr.replace('"$service"', f'"{JOB}"').replace('"$provider"', '".*"')
            if target.get("instant"):
                result = prom.query(expr, at=end)
            else:
                result = prom.query_range(expr, started, end, step="1s")
            points = [p for item in result for p in (item.get("values") or [item.get("value")])]
            if not any(math.isfinite(float(p[1])) for p in points if p):
                empty.append(f"{panel['title']} [{target['refId']}]: {expr}")
        assert empty == []

        def evaluated():
            rules = [rule for group in prom.rules() for rule in group["rules"]]
            return rules if rules and all(rule.get("health") != "unknown" for rule in rules) else None

        rules = prom.wait_for(evaluated, timeout=30)
        assert sorted(r["name"] for r in rules) == ["EmailBounceRateHigh", "EmailComplaintRateCritical",
                                                   "EmailComplaintRateHigh"]
        assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    finally:
        receiver.send_signal(signal.SIGINT)
        receiver.communicate(timeout=60)
        prom.stop()
        keys.certs.stop()
