"""otel-config/ and docker/: everything that can be verified without a Collector, Grafana or Docker.

- Prometheus config and alert rules with Debian's promtool (`check config`, `check rules`, and
  `test rules` unit tests that fire and clear every alert), and proof that those unit tests fail
  when an alert is broken.
- Collector configs, the Grafana dashboard and provisioning, and the compose file with the
  scoped checkers of tests/support/otel_config_checks.py (shown to catch broken variants), and
  the compose file against the compose-spec schema with Debian's `docker-compose config`.
- Every metric and label name the alerts and dashboard use is one mailscope exports.

The dashboard's queries are run against real data in tests/test_demo_prometheus.py.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mailscope import attributes as attr
from tests.support import otel_config_checks as checks

REPO = Path(__file__).resolve().parents[1]
OTEL = REPO / "otel-config"
PROM_DIR = OTEL / "prometheus"
COLLECTOR_DIR = OTEL / "collector"
GRAFANA_DIR = OTEL / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "email-pipeline.json"
COMPOSE = REPO / "docker" / "docker-compose.yml"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed here (`make test` installs it as root)")
    return path


def _run(*cmd, cwd=None):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def _load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def _alert_rules(doc=None) -> list[dict]:
    doc = doc or _load_yaml(PROM_DIR / "alerts.yml")
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def _datasource_uids() -> set[str]:
    doc = _load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yaml")
    return {ds["uid"] for ds in doc["datasources"]}


# --- Prometheus: promtool ------------------------------------------------------------------------
def test_promtool_check_config_accepts_prometheus_yml():
    done = _run(_tool("promtool"), "check", "config", str(PROM_DIR / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_promtool_check_config_rejects_a_broken_config(tmp_path):
    # the same check, shown to fail: a scrape job without a name
    broken = _load_yaml(PROM_DIR / "prometheus.yml")
    del broken["scrape_configs"][0]["job_name"]
    shutil.copy(PROM_DIR / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(broken))
    done = _run(_tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode != 0


def test_promtool_check_rules_accepts_the_alert_rules():
    done = _run(_tool("promtool"), "check", "rules", str(PROM_DIR / "alerts.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_alert_rules())} rules found" in done.stdout


def test_the_seven_starting_alerts_exist_with_their_thresholds():
    rules = {rule["alert"]: rule for rule in _alert_rules()}
    assert len(rules) == 7
    expected = {
        "EmailSendErrorRatioHigh": ["> 0.05", "[5m]"],
        "EmailQueueBacklogGrowing": ["> 1000", "deriv(mailscope_queue_depth[10m])"],
        "EmailQueueOldestMessageTooOld": ["mailscope_queue_oldest_age_seconds", "> 900"],
        "EmailOperationConsistentlySlow": ["mailscope_slow_operations_total"],
        "EmailServiceMemoryGrowing": ["process_memory_usage_bytes", "* 3600 > 100e6"],
        "EmailTemplateCacheHitRatioLow": ['email_template_cache_hit="true"', "< 0.5"],
        "EmailErrorFingerprintSurge": ["mailscope_error_fingerprint", "mailscope_errors_total"],
    }
    assert set(rules) == set(expected)
    for name, fragments in expected.items():
        for fragment in fragments:
            assert fragment in rules[name]["expr"], (name, fragment)
        assert rules[name]["labels"]["severity"] in ("warning", "critical")
        assert rules[name]["annotations"]["summary"]


def test_promtool_unit_tests_fire_and_clear_every_alert():
    done = _run(_tool("promtool"), "test", "rules", "alerts.test.yml", cwd=PROM_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    # and the unit tests cover every alert both firing and cleared again later
    tests = _load_yaml(PROM_DIR / "alerts.test.yml")["tests"]
    for rule in _alert_rules():
        checks_for_alert = [
            (case["eval_time"], bool(case["exp_alerts"]))
            for test in tests
            for case in test.get("alert_rule_test", [])
            if case["alertname"] == rule["alert"]
        ]
        firing = [t for t, fires in checks_for_alert if fires]
        cleared_after = [t for t, fires in checks_for_alert if not fires and firing and _minutes(t) > _minutes(firing[0])]
        assert firing, f"{rule['alert']} is never shown to fire"
        assert cleared_after, f"{rule['alert']} is never shown to clear"


def _minutes(duration: str) -> float:
    return sum(int(n) * {"h": 60, "m": 1, "s": 1 / 60}[u] for n, u in re.findall(r"(\d+)([hms])", duration))


@pytest.mark.parametrize("variant", ["never fires", "always fires"])
def test_the_unit_tests_fail_when_an_alert_is_broken(tmp_path, variant):
    """Each alert's unit test depends on that alert: break one, and promtool test rules fails."""
    promtool = _tool("promtool")
    original = _load_yaml(PROM_DIR / "alerts.yml")
    shutil.copy(PROM_DIR / "alerts.test.yml", tmp_path / "alerts.test.yml")
    for index, rule in enumerate(_alert_rules(original)):
        doc = copy.deepcopy(original)
        broken = _alert_rules(doc)[index]
        broken["expr"] = "vector(1) < 0" if variant == "never fires" else "vector(1)"
        (tmp_path / "alerts.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
        done = _run(promtool, "test", "rules", "alerts.test.yml", cwd=tmp_path)
        assert done.returncode != 0, f"breaking {rule['alert']} ({variant}) went unnoticed"
        assert rule["alert"] in done.stdout + done.stderr


def test_alerts_use_only_metrics_and_labels_mailscope_exports():
    problems = []
    for rule in _alert_rules():
        problems += checks.promql_name_problems(rule["expr"], rule["alert"])
        for text in rule["annotations"].values():
            for label in re.findall(r"\$labels\.(\w+)", text):
                if label not in checks.CONTRACT_LABELS | checks.SCRAPE_LABELS:
                    problems.append(f"{rule['alert']}: annotation label {label}")
    assert problems == []


def test_promql_name_check_catches_a_typo():
    metrics, labels = checks.promql_names(
        'sum by (le, mailscope_operation) (rate(mailscope_operation_duration_seconds_bucket{job=~"$service"}[5m]))'
    )
    assert metrics == {"mailscope_operation_duration_seconds_bucket"}
    assert labels == {"le", "mailscope_operation", "job"}
    assert checks.promql_name_problems('rate(mailscope_send_total{outcom="ok"}[5m])', "x") == [
        "x: unknown metric mailscope_send_total",
        "x: unknown label outcom",
    ]


def test_prometheus_yml_scrapes_the_demo_services_and_the_collectors():
    config = _load_yaml(PROM_DIR / "prometheus.yml")
    compose = _load_yaml(COMPOSE)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"newsletter-producer", "newsletter-worker", "otel-gateway-exporter", "otel-collector"} <= set(jobs)
    # DNS discovery names and static targets are compose services, on the ports they serve
    service_env = {name: svc.get("environment") or {} for name, svc in compose["services"].items()}
    for job in ("newsletter-producer", "newsletter-worker"):
        for sd in jobs[job]["dns_sd_configs"]:
            for host in sd["names"]:
                assert host in compose["services"]
                assert service_env[host]["OTEL_SERVICE_NAME"] == job  # job = service name
            assert sd["port"] == 9464
    assert "ENV OTEL_TRACES_EXPORTER=otlp" in (REPO / "docker" / "Dockerfile").read_text()
    assert "OTEL_EXPORTER_PROMETHEUS_PORT=9464" in (REPO / "docker" / "Dockerfile").read_text()
    gateway = _load_yaml(COLLECTOR_DIR / "gateway.yaml")
    assert jobs["otel-gateway-exporter"]["honor_labels"] is True
    assert jobs["otel-gateway-exporter"]["static_configs"][0]["targets"] == [
        "otel-gateway:" + gateway["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    ]
    for target in jobs["otel-collector"]["static_configs"][0]["targets"]:
        assert target.split(":")[0] in compose["services"]
    assert config["rule_files"] == ["alerts.yml", "alerts-delivery.yml"]


# --- OpenTelemetry Collector ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["agent.yaml", "gateway.yaml"])
def test_collector_config_components_and_pipelines(name):
    config = _load_yaml(COLLECTOR_DIR / name)
    assert checks.collector_problems(config) == []
    text = (COLLECTOR_DIR / name).read_text()
    assert "Which config do I run?" in text and "agent.yaml" in text and "gateway.yaml" in text


def test_agent_is_otlp_in_memory_limiter_batch_otlp_out():
    config = _load_yaml(COLLECTOR_DIR / "agent.yaml")
    for signal in ("traces", "metrics"):
        pipeline = config["service"]["pipelines"][signal]
        assert pipeline == {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"], "exporters": ["otlp_grpc"]}


def test_gateway_routes_by_trace_id_then_tail_samples_errors_slow_and_a_share():
    config = _load_yaml(COLLECTOR_DIR / "gateway.yaml")
    pipelines = config["service"]["pipelines"]
    route, sample = pipelines["traces/route"], pipelines["traces/sample"]
    assert route["exporters"] == ["load_balancing"]
    assert config["exporters"]["load_balancing"]["routing_key"] == "traceID"
    # the load balancer sends to the port the sampling pipeline listens on
    lb_port = config["exporters"]["load_balancing"]["resolver"]["dns"]["port"]
    assert sample["receivers"] == ["otlp/sampling"]
    assert config["receivers"]["otlp/sampling"]["protocols"]["grpc"]["endpoint"].endswith(f":{lb_port}")
    assert "tail_sampling" in sample["processors"] and sample["exporters"] == ["otlp_grpc/jaeger"]
    policies = {p["type"]: p for p in config["processors"]["tail_sampling"]["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["boolean_attribute"]["boolean_attribute"] == {"key": attr.SLOW, "value": True}
    assert "TAIL_SAMPLING_PERCENTAGE" in str(policies["probabilistic"]["probabilistic"]["sampling_percentage"])
    assert pipelines["metrics"]["exporters"] == ["prometheus"]


def _use_the_old_otlp_alias(config: dict) -> None:
    config["exporters"]["otlp/jaeger"] = config["exporters"].pop("otlp_grpc/jaeger")
    config["service"]["pipelines"]["traces/sample"]["exporters"] = ["otlp/jaeger"]


def test_collector_checker_catches_broken_configs():
    good = _load_yaml(COLLECTOR_DIR / "gateway.yaml")
    cases = {
        "undefined exporter": lambda c: c["service"]["pipelines"]["traces/sample"]["exporters"].append("otlp_grpc/tempo"),
        "unknown component": lambda c: c["processors"].update({"tailsampling": {}}),
        "metrics-only exporter in traces": lambda c: c["service"]["pipelines"]["traces/sample"]["exporters"].append(
            "prometheus"
        ),
        "memory_limiter not first": lambda c: c["service"]["pipelines"]["metrics"]["processors"].reverse(),
        "unused receiver": lambda c: c["receivers"].update({"otlp/unused": {"protocols": {"grpc": {"endpoint": "0.0.0.0:1"}}}}),
        "localhost receiver": lambda c: c["receivers"]["otlp"]["protocols"]["grpc"].update(endpoint="localhost:4317"),
        "bad env reference": lambda c: c["exporters"]["otlp_grpc/jaeger"].update(endpoint="${JAEGER}"),
        "unknown policy": lambda c: c["processors"]["tail_sampling"]["policies"].append({"name": "x", "type": "slow"}),
        "deprecated exporter alias": _use_the_old_otlp_alias,
    }
    for case, mutate in cases.items():
        config = copy.deepcopy(good)
        mutate(config)
        assert checks.collector_problems(config), f"not caught: {case}"


# --- Grafana -------------------------------------------------------------------------------------
def test_grafana_provisioning_has_prometheus_and_jaeger():
    doc = _load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yaml")
    by_type = {ds["type"]: ds for ds in doc["datasources"]}
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    assert by_type["jaeger"]["url"] == "http://jaeger:16686"
    assert [ds for ds in doc["datasources"] if ds.get("isDefault")] == [by_type["prometheus"]]
    providers = _load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yaml")["providers"]
    compose = _load_yaml(COMPOSE)
    mounts = compose["services"]["grafana"]["volumes"]
    # the provider's path is where compose mounts the dashboards folder holding our JSON
    assert f"../otel-config/grafana/dashboards:{providers[0]['options']['path']}:ro" in mounts
    assert "../otel-config/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_dashboard_structure():
    dashboard = json.loads(DASHBOARD.read_text())
    assert checks.dashboard_problems(dashboard, _datasource_uids()) == []
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"service", "queue"}
    assert "job" in variables["service"]["definition"]
    assert "messaging_destination_name" in variables["queue"]["definition"]


def test_dashboard_has_the_pipeline_panels_with_correct_units():
    dashboard = json.loads(DASHBOARD.read_text())
    panels = {p["title"]: p for p in checks.dashboard_panels(dashboard) if p["type"] != "row"}

    def unit(title):
        return panels[title]["fieldConfig"]["defaults"]["unit"]

    def exprs(title):
        return " ".join(t["expr"] for t in panels[title]["targets"])

    assert unit("Sends/s by outcome") == "ops" and 'mailscope_operation="send"' in exprs("Sends/s by outcome")
    assert "by (outcome)" in exprs("Sends/s by outcome")
    latency = "Send and personalization latency (p50/p95/p99)"
    assert unit(latency) == "s" and all(q in exprs(latency) for q in ("(0.5,", "(0.95,", "(0.99,"))
    assert "send|personalize" in exprs(latency)
    assert unit("Template cache hit ratio") == "percentunit"
    assert unit("Queue depth") == "short" and "mailscope_queue_depth" in exprs("Queue depth")
    assert unit("Oldest message age") == "s" and "mailscope_queue_oldest_age_seconds" in exprs("Oldest message age")
    assert unit("Queue wait p95") == "s" and "mailscope_queue_wait_seconds_bucket" in exprs("Queue wait p95")
    assert "by (mailscope_error_category)" in exprs("Errors/s by category")
    table = panels["Top error fingerprints"]
    assert table["type"] == "table" and table["targets"][0]["format"] == "table" and table["targets"][0]["instant"]
    assert "topk(10" in exprs("Top error fingerprints")
    assert unit("Slow operations/s by span name") == "ops" and "span_name" in exprs("Slow operations/s by span name")
    memory = panels["Memory deltas by operation"]
    assert unit("Memory deltas by operation") == "Bps" and "mailscope_memory_delta_bytes_sum" in exprs(
        "Memory deltas by operation"
    )
    assert memory["fieldConfig"]["overrides"][0]["properties"][0] == {"id": "unit", "value": "bytes"}
    assert unit("Process RSS") == "bytes" and "process_memory_usage_bytes" in exprs("Process RSS")
    for panel in panels.values():
        for target in panel.get("targets", []):
            if 'job=~"$service"' not in target["expr"]:
                raise AssertionError(f"{panel['title']}: not filtered by $service")
    for title in ("Queue depth", "Oldest message age", "Queue wait p95"):
        assert 'messaging_destination_name=~"$queue"' in exprs(title)


def test_dashboard_queries_use_only_metrics_and_labels_mailscope_exports():
    dashboard = json.loads(DASHBOARD.read_text())
    problems = []
    for panel, target in checks.prometheus_targets(dashboard):
        where = f"{panel['title']} {target['refId']}"
        problems += checks.promql_name_problems(target["expr"], where)
        _, labels = checks.promql_names(target["expr"])
        if " by (" not in target["expr"]:
            continue  # a plain selector keeps every label
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")):
            if label not in labels:
                problems.append(f"{where}: legend uses {label}, which the query does not keep")
    for variable in dashboard["templating"]["list"]:
        inner = re.search(r"label_values\((.*),\s*(\w+)\)$", variable["definition"])
        problems += checks.promql_name_problems(inner.group(1), f"variable {variable['name']}")
    assert problems == []


def test_dashboard_checker_catches_broken_dashboards():
    good = json.loads(DASHBOARD.read_text())
    uids = _datasource_uids()
    panel_index = next(i for i, p in enumerate(good["panels"]) if p["type"] == "timeseries")
    cases = {
        "duplicate id": lambda d: d["panels"][panel_index + 1].update(id=d["panels"][panel_index]["id"]),
        "unknown datasource": lambda d: d["panels"][panel_index].update(datasource={"type": "prometheus", "uid": "prom"}),
        "unknown unit": lambda d: d["panels"][panel_index]["fieldConfig"]["defaults"].update(unit="seconds"),
        "overlap": lambda d: d["panels"][panel_index + 1].update(gridPos=dict(d["panels"][panel_index]["gridPos"])),
        "undefined variable": lambda d: d["panels"][panel_index]["targets"][0].update(
            expr=d["panels"][panel_index]["targets"][0]["expr"].replace("$service", "$svc")
        ),
        "duplicate refId": lambda d: d["panels"][panel_index]["targets"].append(dict(d["panels"][panel_index]["targets"][0])),
    }
    for case, mutate in cases.items():
        dashboard = copy.deepcopy(good)
        mutate(dashboard)
        assert checks.dashboard_problems(dashboard, uids), f"not caught: {case}"


# --- docker --------------------------------------------------------------------------------------
def test_compose_file_is_valid_against_the_compose_spec():
    # Debian's docker-compose validates against the compose-spec JSON schema it ships; it needs no
    # Docker engine for `config`.
    done = _run(_tool("docker-compose"), "-f", str(COMPOSE), "config", "-q")
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_spec_validation_rejects_an_invalid_file(tmp_path):
    broken = _load_yaml(COMPOSE)
    broken["services"]["worker"]["restart_policy"] = "always"  # not a compose key
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    done = _run(_tool("docker-compose"), "-f", str(path), "config", "-q")
    assert done.returncode != 0


def test_compose_stack_has_every_service_pinned_and_wired():
    compose = _load_yaml(COMPOSE)
    assert checks.compose_problems(compose, COMPOSE.parent) == []
    services = compose["services"]
    images = {name: svc.get("image", "") for name, svc in services.items()}
    # both collector tiers run mailscope's own distribution, built from the builder config the tests build
    for name in ("otel-agent", "otel-gateway"):
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile.collector"
        assert images[name].startswith("mailscope-otelcol:")
    dockerfile = (REPO / "docker" / "Dockerfile.collector").read_text()
    assert "scripts/build-collector.sh" in dockerfile and "otel-config/collector/builder-config.yaml" in dockerfile
    assert images["jaeger"].startswith("jaegertracing/all-in-one:")
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert images["prometheus"].startswith("prom/prometheus:") and images["grafana"].startswith("grafana/grafana:")
    assert images["redis"].startswith("redis:") and images["postgres"].startswith("postgres:")
    assert images["mailpit"].startswith("axllent/mailpit:")
    for name in ("producer", "worker"):
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgresql")
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-agent:4317"
    assert services["producer"]["command"][0] == "examples.newsletter.producer"
    assert services["worker"]["command"] == ["examples.newsletter.worker"]
    assert "--relay" in services["smtp-sink"]["command"] and "mailpit:1025" in services["smtp-sink"]["command"]
    # the collectors get the configs of otel-config
    assert "../otel-config/collector/agent.yaml:/etc/otelcol/agent.yaml:ro" in services["otel-agent"]["volumes"]
    assert "../otel-config/collector/gateway.yaml:/etc/otelcol/gateway.yaml:ro" in services["otel-gateway"]["volumes"]
    gateway = services["otel-gateway"]["environment"]
    assert gateway["GATEWAY_DNS_NAME"] == "otel-gateway" and gateway["JAEGER_OTLP_ENDPOINT"] == "jaeger:4317"


def test_dockerfile_runs_the_demo_under_opentelemetry_instrument():
    text = (REPO / "docker" / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.M).group(1)
    assert checks.PINNED_TAG.match(base) and not base.endswith(":latest")
    assert 'ENTRYPOINT ["opentelemetry-instrument", "python", "-m"]' in text
    assert 'pip install ".[demo]"' in text
    # every folder the image copies exists
    for source in re.findall(r"^COPY\s+(\S+)", text, re.M):
        assert (REPO / source).exists(), source


def test_compose_checker_catches_broken_files():
    good = _load_yaml(COMPOSE)
    cases = {
        "latest tag": lambda c: c["services"]["redis"].update(image="redis:latest"),
        "untagged": lambda c: c["services"]["redis"].update(image="redis"),
        "missing mount": lambda c: c["services"]["prometheus"].update(volumes=["../otel-config/nope:/etc/prometheus:ro"]),
        "unknown dependency": lambda c: c["services"]["worker"].update(depends_on=["rabbitmq"]),
        "missing Dockerfile": lambda c: c["services"]["worker"].update(build={"context": "..", "dockerfile": "nope"}),
    }
    for case, mutate in cases.items():
        compose = copy.deepcopy(good)
        mutate(compose)
        assert checks.compose_problems(compose, COMPOSE.parent), f"not caught: {case}"
