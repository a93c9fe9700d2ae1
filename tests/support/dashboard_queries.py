"""Run every PromQL query of the Grafana dashboard against a real Prometheus, as Grafana would.

    empty, evaluated, values = run_dashboard(prom, dashboard, start, end)

The dashboard's variables are set to what its own variable queries return (multi-value, regex
escaped like Grafana does); `$__rate_interval` and `$__range` become the whole run. `empty` lists
the panel targets that returned no finite value.
"""

from __future__ import annotations

import math
import re

from tests.support import otel_config_checks as checks


def regex_literal(value: str) -> str:
    """A value as a regex inside a PromQL string literal (as Grafana formats multi-value variables)."""
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", value)


def variable_values(prom, dashboard: dict, chosen: dict) -> dict:
    values = {}
    for variable in dashboard["templating"]["list"]:
        query = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable["definition"])
        selector, label = query.group(1), query.group(2)
        for name, value in chosen.items():
            selector = selector.replace(f"${name}", value)
        found = prom.label_values(label, match=selector)
        values[variable["name"]] = found
        chosen[variable["name"]] = "(" + "|".join(regex_literal(v) for v in found) + ")" if found else "^$"
    return values


def finite(series: list) -> bool:
    for item in series:
        points = item.get("values") or [item.get("value")]
        if any(point and math.isfinite(float(point[1])) for point in points):
            return True
    return False


def run_dashboard(prom, dashboard: dict, start: float, end: float, step: str = "5s") -> tuple[list[str], int, dict]:
    chosen: dict = {}
    values = variable_values(prom, dashboard, chosen)
    window = f"{int(end - start) + 10}s"
    empty, evaluated = [], 0
    for panel, target in checks.prometheus_targets(dashboard):
        expr = target["expr"].replace("$__rate_interval", window).replace("$__range", window)
        for name, value in chosen.items():
            expr = expr.replace(f'"${name}"', f'"{value}"')
        assert "$" not in expr, expr  # every variable was substituted
        if target.get("instant"):
            result = prom.query(expr, at=end)
        else:
            result = prom.query_range(expr, start, end, step=step)
        evaluated += 1
        if not finite(result):
            empty.append(f"{panel['title']} [{target['refId']}]: {expr}")
    return empty, evaluated, values
