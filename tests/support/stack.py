"""The production path on one host: Jaeger v2, two gateway Collectors and an agent Collector.

All three Collectors run mailscope's build (build/otelcol-mailscope) from the SHIPPED
otel-config/collector/agent.yaml and gateway.yaml. What differs on one host comes in through the
environment variables those files read and through an overlay file per instance, merged by the
Collector's own `--config` merging (free loopback ports, the gateways' static resolver listing
both instances, optional file exporters). Jaeger runs from otel-config/jaeger/config.yaml with
its endpoints from the environment.

    stack = LocalStack(workdir, sampling_percentage=25, decision_wait="10s", record=True)
    stack.agent_otlp          # http://127.0.0.1:PORT, where services send OTLP gRPC
    stack.jaeger_url          # Jaeger's query API
    stack.truth_path          # record=True: every span the agent received (OTLP JSON lines)
    stack.owned_paths         # record=True: per gateway, every span it received on its sampling port
    stack.stop()

Used by tests/stack and by `make stack` (scripts/stack.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.support.collector import GoService, collector_binary, jaeger_binary
from tests.support.launcher import free_port

REPO = Path(__file__).resolve().parents[2]
OTEL = REPO / "otel-config"
AGENT_YAML = OTEL / "collector" / "agent.yaml"
GATEWAY_YAML = OTEL / "collector" / "gateway.yaml"
JAEGER_YAML = OTEL / "jaeger" / "config.yaml"
PROMETHEUS_YML = OTEL / "prometheus" / "prometheus.yml"
HOST = "127.0.0.1"


def shipped_rule_files() -> list[Path]:
    """The rule files the shipped prometheus.yml loads (paths relative to it)."""
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    return [PROMETHEUS_YML.parent / name for name in config.get("rule_files") or []]


def _addr(port: int) -> str:
    return f"{HOST}:{port}"


def _telemetry(port: int) -> dict:
    return {"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {"host": HOST, "port": port}}}}]}}


class LocalStack:
    def __init__(self, workdir: Path, *, sampling_percentage: float = 25, decision_wait: str = "10s",
                 record: bool = False, gateways: int = 2):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.record = record
        self.services: list[GoService] = []
        try:
            self._start_jaeger()
            self._start_gateways(gateways, sampling_percentage, decision_wait)
            self._start_agent()
        except BaseException:
            self.stop()
            raise

    # -- processes ---------------------------------------------------------------------------
    def _start_jaeger(self) -> None:
        self.jaeger_otlp_port, query, health = free_port(), free_port(), free_port()
        env = {
            "JAEGER_OTLP_GRPC_ENDPOINT": _addr(self.jaeger_otlp_port),
            "JAEGER_OTLP_HTTP_ENDPOINT": _addr(free_port()),
            "JAEGER_QUERY_HTTP_ENDPOINT": _addr(query),
            "JAEGER_QUERY_GRPC_ENDPOINT": _addr(free_port()),
            "JAEGER_HEALTH_ENDPOINT": _addr(health),
            "JAEGER_METRICS_HOST": HOST,
            "JAEGER_METRICS_PORT": free_port(),
        }
        self.jaeger_url = f"http://{_addr(query)}"
        self.jaeger = GoService("jaeger", [jaeger_binary(), "--config", JAEGER_YAML], env=env, workdir=self.workdir,
                                ready_url=f"{self.jaeger_url}/api/services")
        self.services.append(self.jaeger)

    def _start_gateways(self, count: int, sampling_percentage: float, decision_wait: str) -> None:
        ports = [{name: free_port() for name in ("otlp", "http", "sampling", "health", "telemetry", "exporter")}
                 for _ in range(count)]
        ring = [_addr(p["sampling"]) for p in ports]
        env = {
            "JAEGER_OTLP_ENDPOINT": _addr(self.jaeger_otlp_port),
            "TAIL_SAMPLING_PERCENTAGE": sampling_percentage,
            "TAIL_SAMPLING_DECISION_WAIT": decision_wait,
        }
        self.gateways: list[GoService] = []
        self.gateway_ports = ports
        self.owned_paths: list[Path] = []
        for index, p in enumerate(ports):
            name = f"gateway-{index}"
            overlay: dict = {
                "extensions": {"health_check": {"endpoint": _addr(p["health"])}},
                "receivers": {
                    "otlp": {"protocols": {"grpc": {"endpoint": _addr(p["otlp"])}, "http": {"endpoint": _addr(p["http"])}}},
                    "otlp/sampling": {"protocols": {"grpc": {"endpoint": _addr(p["sampling"])}}},
                },
                "exporters": {
                    # every gateway lists every instance (itself included), as DNS would return them
                    "load_balancing": {"resolver": {"dns": None, "static": {"hostnames": ring}}},
                    "prometheus": {"endpoint": _addr(p["exporter"])},
                },
                "service": {"telemetry": _telemetry(p["telemetry"])},
            }
            if self.record:  # what this instance got on its sampling port, before sampling
                owned = self.workdir / f"{name}-owned.jsonl"
                self.owned_paths.append(owned)
                overlay["exporters"]["file/owned"] = {"path": str(owned)}
                overlay["service"]["pipelines"] = {
                    "traces/owned": {"receivers": ["otlp/sampling"], "exporters": ["file/owned"]}
                }
            gateway = self._collector(name, GATEWAY_YAML, overlay, env, p["health"])
            self.gateways.append(gateway)

    def _start_agent(self) -> None:
        p = {name: free_port() for name in ("otlp", "http", "health", "telemetry")}
        self.agent_ports = p
        overlay: dict = {
            "extensions": {"health_check": {"endpoint": _addr(p["health"])}},
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": _addr(p["otlp"])}, "http": {"endpoint": _addr(p["http"])}}}},
            "service": {"telemetry": _telemetry(p["telemetry"])},
        }
        if self.record:  # the independent truth: every span the agent received, beside its OTLP exporter
            self.truth_path = self.workdir / "agent-spans.jsonl"
            overlay["exporters"] = {"file/truth": {"path": str(self.truth_path)}}
            overlay["service"]["pipelines"] = {"traces": {"exporters": ["otlp_grpc", "file/truth"]}}
        # the agent forwards to the first gateway, whose load balancing spreads traces over all of them
        env = {"OTLP_FORWARD_ENDPOINT": _addr(self.gateway_ports[0]["otlp"])}
        self.agent = self._collector("agent", AGENT_YAML, overlay, env, p["health"])
        self.agent_otlp = f"http://{_addr(p['otlp'])}"
        self.agent_metrics_url = f"http://{_addr(p['telemetry'])}/metrics"

    def _collector(self, name: str, shipped: Path, overlay: dict, env: dict, health: int) -> GoService:
        overlay_path = self.workdir / f"{name}-overlay.yaml"
        overlay_path.write_text(yaml.safe_dump(overlay, sort_keys=False))
        service = GoService(name, [collector_binary(), "--config", shipped, "--config", overlay_path], env=env,
                            workdir=self.workdir, ready_url=f"http://{_addr(health)}/")
        self.services.append(service)
        return service

    # -- Prometheus ---------------------------------------------------------------------------
    def prometheus_targets(self, folder: Path, scrape_interval: str | None = None) -> None:
        """file_sd target files that the shipped prometheus.yml reads from `folder/targets/`.

        `scrape_interval` (e.g. "1s") overrides the shipped 15 s for these targets only, through
        Prometheus's `__scrape_interval__`/`__scrape_timeout__` target labels: a short run then
        still gets many scrapes, and prometheus.yml stays as shipped."""
        targets = Path(folder) / "targets"
        targets.mkdir(parents=True, exist_ok=True)
        labels = {"__scrape_interval__": scrape_interval, "__scrape_timeout__": scrape_interval} if scrape_interval else {}
        exporters = [_addr(p["exporter"]) for p in self.gateway_ports]
        collectors = [_addr(self.agent_ports["telemetry"])] + [_addr(p["telemetry"]) for p in self.gateway_ports]
        (targets / "otel-gateway-exporter.json").write_text(json.dumps([{"targets": exporters, "labels": labels}]))
        (targets / "otel-collector.json").write_text(json.dumps([{"targets": collectors, "labels": labels}]))

    def prometheus_folder(self, folder: Path, scrape_interval: str | None = None) -> str:
        """A folder for the shipped prometheus.yml: its rule files linked beside it, and the target
        files. Returns the text to start Prometheus with: prometheus.yml as shipped."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for rule_file in shipped_rule_files():
            (folder / rule_file.name).symlink_to(rule_file)
        self.prometheus_targets(folder, scrape_interval)
        return PROMETHEUS_YML.read_text()

    def stop(self) -> None:
        for service in reversed(self.services):  # the agent first, Jaeger last: everything drains forward
            service.stop()
