"""Clearly scoped structural checks for otel-config/ and docker/, for what cannot run here.

No Collector, Grafana or Docker engine runs on these machines, so these functions check what
their configuration files can get wrong without them. Each returns a list of problems (empty
when fine); tests assert both that the shipped files pass and that broken variants are caught.

- `collector_problems(config)`: component types exist in otelcol-contrib (the ones we use),
  every pipeline references defined components of a kind that supports its signal, every defined
  component is used, memory_limiter comes first, env references are well formed, receivers
  bind all interfaces (the Collector defaults to localhost since v0.110, useless in a container).
- `promql_names(expr)`: metric names and label names a PromQL expression uses (a tokenizer
  scoped to the expressions we write: selectors, by/without/on/ignoring clauses, functions).
- `dashboard_problems(dashboard, datasource_uids)`: unique panel ids, non-overlapping grid,
  data source references that exist, known Grafana units, targets with expressions and unique
  refIds, defined template variables.
- `compose_problems(compose, compose_dir)`: pinned images, bind-mounted files that exist,
  depends_on that name services, build contexts and Dockerfiles that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

from mailscope import attributes as attr

# --- the names mailscope exports, in Prometheus form (contract: Metrics table) ------------------


def _prom(name: str, kind: str, unit: str = "") -> set[str]:
    base = name.replace(".", "_") + {"s": "_seconds", "By": "_bytes"}.get(unit, "")
    if kind == "counter":
        return {base + "_total"}
    if kind == "histogram":
        return {base + suffix for suffix in ("_bucket", "_sum", "_count")}
    return {base}


CONTRACT_SERIES = (
    _prom(attr.METRIC_OPERATION_DURATION, "histogram", "s")
    | _prom(attr.METRIC_TEMPLATE_CACHE, "counter")
    | _prom(attr.METRIC_RECIPIENTS, "counter")
    | _prom(attr.METRIC_QUEUE_DEPTH, "gauge")
    | _prom(attr.METRIC_QUEUE_OLDEST_AGE, "gauge", "s")
    | _prom(attr.METRIC_QUEUE_WAIT, "histogram", "s")
    | _prom(attr.METRIC_SLOW_OPERATIONS, "counter")
    | _prom(attr.METRIC_ERRORS, "counter")
    | _prom(attr.METRIC_MEMORY_DELTA, "histogram", "By")
)
# what else a service's /metrics serves: the process's resident memory under its semantic-convention
# name (mailscope exports it, so it also arrives through a Collector), prometheus_client's process
# collector, the OTel exporter's target_info, and what a scrape adds
OTHER_SERIES = {"process_memory_usage_bytes", "process_resident_memory_bytes", "target_info", "up"}

CONTRACT_LABELS = {
    key.replace(".", "_")
    for key in (
        attr.OPERATION, attr.TEMPLATE_NAME, attr.PROVIDER, attr.MESSAGING_DESTINATION_NAME, attr.LABEL_OUTCOME,
        attr.ERROR_CATEGORY, attr.TEMPLATE_ENGINE, attr.TEMPLATE_CACHE_HIT, attr.LABEL_SPAN_NAME, attr.SLOW_REASON,
        attr.ERROR_FINGERPRINT, attr.ERROR_RETRYABLE,
    )
}
SCRAPE_LABELS = {"job", "instance", "le"}

# --- PromQL -------------------------------------------------------------------------------------
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    "inf", "nan",
}


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) used by `expr`."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals out
    labels: set[str] = set()
    for inner in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", inner))
    text = re.sub(r"\{[^}]*\}", " ", text)
    for inner in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text):
        labels |= {part.strip() for part in inner.split(",") if part.strip()}
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range windows, subqueries
    text = re.sub(r"\$\w+", " ", text)  # Grafana variables
    metrics = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_WORDS:
            continue
        metrics.add(name)
    return metrics, labels


def promql_name_problems(expr: str, where: str) -> list[str]:
    metrics, labels = promql_names(expr)
    problems = [f"{where}: unknown metric {m}" for m in sorted(metrics - CONTRACT_SERIES - OTHER_SERIES)]
    problems += [f"{where}: unknown label {lb}" for lb in sorted(labels - CONTRACT_LABELS - SCRAPE_LABELS)]
    return problems


# --- OpenTelemetry Collector --------------------------------------------------------------------
# component type -> signals it supports (the otelcol-contrib components these configs use)
COLLECTOR_COMPONENTS = {
    "receivers": {"otlp": {"traces", "metrics", "logs"}, "prometheus": {"metrics"}},
    "processors": {
        "memory_limiter": {"traces", "metrics", "logs"},
        "batch": {"traces", "metrics", "logs"},
        "tail_sampling": {"traces"},
        "resource": {"traces", "metrics", "logs"},
    },
    "exporters": {
        "otlp_grpc": {"traces", "metrics", "logs"},
        "otlphttp": {"traces", "metrics", "logs"},
        "load_balancing": {"traces", "logs", "metrics"},
        "prometheus": {"metrics"},
        "debug": {"traces", "metrics", "logs"},
    },
    "extensions": {"health_check": set(), "pprof": set(), "zpages": set()},
}
# old exporter type names that the v0.161 build still accepts, with a warning at every start
DEPRECATED_EXPORTERS = {"otlp": "otlp_grpc", "loadbalancing": "load_balancing"}
TAIL_SAMPLING_POLICY_TYPES = {
    "always_sample", "latency", "numeric_attribute", "probabilistic", "status_code", "string_attribute",
    "trace_state", "rate_limiting", "span_count", "boolean_attribute", "ottl_condition", "and", "composite",
}
ENV_REFERENCE = re.compile(r"\$\{([^}]*)\}")


def _component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def _walk_strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_strings(value)
    elif isinstance(node, str):
        yield node


def collector_problems(config: dict) -> list[str]:
    problems: list[str] = []
    if not isinstance(config, dict):
        return ["config is not a mapping"]
    for kind, known in COLLECTOR_COMPONENTS.items():
        for component_id in config.get(kind) or {}:
            if kind == "exporters" and _component_type(component_id) in DEPRECATED_EXPORTERS:
                problems.append(f"{kind}: {component_id!r} uses a deprecated alias; the type is now "
                                f"{DEPRECATED_EXPORTERS[_component_type(component_id)]!r}")
            elif _component_type(component_id) not in known:
                problems.append(f"{kind}: unknown component type {component_id!r}")
    service = config.get("service") or {}
    for ext in service.get("extensions") or []:
        if ext not in (config.get("extensions") or {}):
            problems.append(f"service.extensions: {ext!r} is not defined")
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        problems.append("service.pipelines is empty")
    used = {kind: set() for kind in ("receivers", "processors", "exporters")}
    for pipeline_id, pipeline in pipelines.items():
        signal = _component_type(pipeline_id)
        if signal not in ("traces", "metrics", "logs"):
            problems.append(f"pipeline {pipeline_id!r}: unknown signal {signal!r}")
            continue
        for kind in ("receivers", "processors", "exporters"):
            refs = (pipeline or {}).get(kind) or []
            if kind != "processors" and not refs:
                problems.append(f"pipeline {pipeline_id}: no {kind}")
            for ref in refs:
                used[kind].add(ref)
                if ref not in (config.get(kind) or {}):
                    problems.append(f"pipeline {pipeline_id}: {kind[:-1]} {ref!r} is not defined")
                    continue
                supported = COLLECTOR_COMPONENTS[kind].get(_component_type(ref), set())
                if signal not in supported:
                    problems.append(f"pipeline {pipeline_id}: {ref!r} does not support {signal}")
        processors = (pipeline or {}).get("processors") or []
        if "memory_limiter" in processors and processors[0] != "memory_limiter":
            problems.append(f"pipeline {pipeline_id}: memory_limiter must come first")
        if "tail_sampling" in processors and "batch" in processors and processors.index("batch") < processors.index(
            "tail_sampling"
        ):
            problems.append(f"pipeline {pipeline_id}: batch before tail_sampling")
    for kind in used:
        for component_id in config.get(kind) or {}:
            if component_id not in used[kind]:
                problems.append(f"{kind}: {component_id!r} is defined but no pipeline uses it")
    for receiver_id, receiver in (config.get("receivers") or {}).items():
        for proto, settings in ((receiver or {}).get("protocols") or {}).items():
            endpoint = (settings or {}).get("endpoint", "")
            if not str(endpoint).startswith("0.0.0.0:"):
                problems.append(f"receiver {receiver_id} {proto}: endpoint {endpoint!r} does not bind all interfaces")
    for text in _walk_strings(config):
        for ref in ENV_REFERENCE.findall(text):
            if not re.fullmatch(r"env:[A-Z_][A-Z0-9_]*(:-[^}]*)?", ref):
                problems.append(f"malformed environment reference ${{{ref}}}")
    for component_id, settings in (config.get("processors") or {}).items():
        if _component_type(component_id) == "tail_sampling":
            for policy in (settings or {}).get("policies") or []:
                if policy.get("type") not in TAIL_SAMPLING_POLICY_TYPES:
                    problems.append(f"{component_id}: unknown policy type {policy.get('type')!r}")
                elif policy.get("type") not in policy:
                    problems.append(f"{component_id}: policy {policy.get('name')!r} lacks its {policy['type']} block")
    for component_id, settings in (config.get("exporters") or {}).items():
        if _component_type(component_id) == "load_balancing":
            if (settings or {}).get("routing_key", "traceID") not in ("traceID", "service", "resource", "metric", "streamID"):
                problems.append(f"{component_id}: unknown routing_key")
            if not ((settings or {}).get("resolver") or {}):
                problems.append(f"{component_id}: no resolver")
    return problems


# --- Grafana ------------------------------------------------------------------------------------
# Grafana unit ids (packages/grafana-data valueFormats) that an email dashboard may use
GRAFANA_UNITS = {
    "none", "short", "string", "locale", "percent", "percentunit",
    "ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations",
    "bits", "bytes", "kbytes", "mbytes", "gbytes", "decbits", "decbytes", "deckbytes", "decmbytes",
    "Bps", "bps", "pps", "cps", "ops", "reqps", "rps", "wps", "iops", "cpm", "opm", "rpm", "wpm", "hertz",
}
GRAFANA_BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms"}
PANELS_WITHOUT_QUERIES = {"row", "text", "news", "dashlist"}


def dashboard_panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard.get("panels") or []:
        panels.append(panel)
        panels.extend(panel.get("panels") or [])  # collapsed rows
    return panels


def _datasource_uid(ref):
    if isinstance(ref, dict):
        return ref.get("uid")
    return ref  # legacy: a name or uid string


def _links(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "links" and isinstance(value, list):
                yield from (v for v in value if isinstance(v, dict))
            else:
                yield from _links(value)
    elif isinstance(node, list):
        for value in node:
            yield from _links(value)


def dashboard_problems(dashboard: dict, datasource_uids: set[str]) -> list[str]:
    problems: list[str] = []
    variables = {v.get("name") for v in (dashboard.get("templating") or {}).get("list") or []}
    known_uids = set(datasource_uids) | {"-- Grafana --"}

    def check_ref(ref, where):
        uid = _datasource_uid(ref)
        if uid is None:
            return
        if isinstance(uid, str) and uid.startswith("$"):
            if uid.strip("${}") not in variables:
                problems.append(f"{where}: data source variable {uid} is not defined")
        elif uid not in known_uids:
            problems.append(f"{where}: data source {uid!r} is not provisioned")

    def check_variables(text, where):
        for name in re.findall(r"\$\{?(\w+)", text or ""):
            if name not in variables and name not in GRAFANA_BUILTIN_VARIABLES:
                problems.append(f"{where}: variable ${name} is not defined")

    if not dashboard.get("uid"):
        problems.append("dashboard has no uid")
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        where = f"variable {variable.get('name')}"
        check_ref(variable.get("datasource"), where)
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if variable.get("type") == "query" and not text:
            problems.append(f"{where}: no query")
    for annotation in (dashboard.get("annotations") or {}).get("list") or []:
        check_ref(annotation.get("datasource"), f"annotation {annotation.get('name')}")

    panels = dashboard_panels(dashboard)
    ids = [p.get("id") for p in panels]
    for dup in sorted({i for i in ids if ids.count(i) > 1}, key=str):
        problems.append(f"panel id {dup} is used more than once")
    if any(not isinstance(i, int) for i in ids):
        problems.append("every panel needs an integer id")
    cells: dict = {}
    for panel in panels:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            problems.append(f"{where}: gridPos needs integer h, w, x, y")
        elif grid["x"] < 0 or grid["w"] < 1 or grid["x"] + grid["w"] > 24:
            problems.append(f"{where}: gridPos outside the 24-column grid")
        else:
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    if (x, y) in cells:
                        problems.append(f"{where}: overlaps panel {cells[(x, y)]}")
                        break
                    cells[(x, y)] = panel.get("id")
                else:
                    continue
                break
        if not panel.get("title"):
            problems.append(f"panel {panel.get('id')}: no title")
        if panel.get("type") in PANELS_WITHOUT_QUERIES:
            continue
        check_ref(panel.get("datasource"), where)
        unit = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
        if unit is None:
            problems.append(f"{where}: no unit")
        elif unit not in GRAFANA_UNITS and not re.match(r"^(suffix|prefix|si|count|currency|time):", unit):
            problems.append(f"{where}: unknown unit {unit!r}")
        for override in (panel.get("fieldConfig") or {}).get("overrides") or []:
            for prop in override.get("properties") or []:
                if prop.get("id") == "unit" and prop.get("value") not in GRAFANA_UNITS:
                    problems.append(f"{where}: unknown override unit {prop.get('value')!r}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        ref_ids = [t.get("refId") for t in targets]
        if len(set(ref_ids)) != len(ref_ids) or None in ref_ids:
            problems.append(f"{where}: refIds must be present and unique")
        for target in targets:
            check_ref(target.get("datasource") or panel.get("datasource"), f"{where} target {target.get('refId')}")
            if _datasource_uid(target.get("datasource") or panel.get("datasource")) == "prometheus":
                if not target.get("expr"):
                    problems.append(f"{where} target {target.get('refId')}: no expr")
                check_variables(target.get("expr"), f"{where} target {target.get('refId')}")
        for link in _links(panel.get("fieldConfig") or {}):
            internal = link.get("internal")
            if internal:
                check_ref({"uid": internal.get("datasourceUid")}, f"{where} link {link.get('title')!r}")
    return problems


def prometheus_targets(dashboard: dict):
    """(panel, target) for every Prometheus query of the dashboard."""
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets") or []:
            ref = target.get("datasource") or panel.get("datasource")
            if _datasource_uid(ref) == "prometheus" and target.get("expr"):
                yield panel, target


# --- docker compose -----------------------------------------------------------------------------
PINNED_TAG = re.compile(r"^[^:@\s]+(:[\w][\w.-]*\d[\w.-]*|@sha256:[0-9a-f]{64})$")


def compose_problems(compose: dict, compose_dir: Path) -> list[str]:
    problems: list[str] = []
    services = compose.get("services") or {}
    if not services:
        return ["no services"]
    for name, service in services.items():
        image, build = service.get("image"), service.get("build")
        if build:
            context = compose_dir / (build.get("context", ".") if isinstance(build, dict) else build)
            dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            if not context.is_dir():
                problems.append(f"{name}: build context {context} does not exist")
            if not dockerfile.is_file():
                problems.append(f"{name}: Dockerfile {dockerfile} does not exist")
        elif not image:
            problems.append(f"{name}: neither image nor build")
        elif not PINNED_TAG.match(image) or image.endswith(":latest"):
            problems.append(f"{name}: image {image!r} is not pinned to a version")
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")) and not (compose_dir / source).exists():
                problems.append(f"{name}: mounted path {source} does not exist")
        depends = service.get("depends_on") or []
        for dep in depends if isinstance(depends, list) else depends.keys():
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep!r}")
    return problems
