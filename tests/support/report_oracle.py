"""An independent, deliberately naive computation of `mailscope report`'s numbers.

It parses OTLP JSON lines itself (no mailscope reader), holds every span in
lists, and computes exact values with sorting and full trace trees: the
opposite of the report's streaming sketches, so the tests can compare the two.
Definitions follow the README's report section.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict

from mailscope import attributes as attr


def _value(v):
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    return None


def _attrs(items):
    return {kv["key"]: _value(kv.get("value", {})) for kv in items or []}


def load(path) -> list[dict]:
    spans = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if not isinstance(doc, dict):
                continue
            for rs in doc.get("resourceSpans", []):
                resource = _attrs(rs.get("resource", {}).get("attributes"))
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        code = (s.get("status") or {}).get("code", 0)
                        spans.append({
                            "trace": s["traceId"], "id": s["spanId"], "parent": s.get("parentSpanId") or None,
                            "name": s["name"], "start": int(s["startTimeUnixNano"]), "end": int(s["endTimeUnixNano"]),
                            "attrs": _attrs(s.get("attributes")), "error": code in (2, "STATUS_CODE_ERROR"),
                            "service": resource.get(attr.SERVICE_NAME),
                            "events": [(e.get("name"), _attrs(e.get("attributes"))) for e in s.get("events", [])],
                            "links": [link["traceId"] for link in s.get("links", [])],
                        })
    return spans


def nearest_rank(values, percent):
    ordered = sorted(values)
    return ordered[math.ceil(percent * len(ordered) / 100) - 1]


def _op(span):
    op = span["attrs"].get(attr.OPERATION)
    return op if isinstance(op, str) and op else None


def _error_key(span):
    a = span["attrs"]
    if isinstance(a.get(attr.ERROR_FINGERPRINT), str) and a[attr.ERROR_FINGERPRINT]:
        return a[attr.ERROR_FINGERPRINT]
    etype = a.get(attr.ERROR_TYPE)
    if not isinstance(etype, str):
        etype = next((ev.get(attr.EXCEPTION_TYPE) for name, ev in span["events"] if name == attr.EXCEPTION_EVENT), None)
    return "type:" + (etype or "unknown")


def _is_error_pattern_span(span):
    return span["error"] or isinstance(span["attrs"].get(attr.ERROR_CATEGORY), str)


def _journeys(spans):
    by_trace = defaultdict(dict)
    for s in spans:
        by_trace[s["trace"]][s["id"]] = s
    totals = Counter()
    bottlenecks = Counter()
    journeys = emails = 0
    stages = ("queue_wait", "template_load", "personalization", "db", "smtp_connect", "send")
    # queue wait: on receive spans, for the trace(s) they link to, else their own
    waits = Counter()
    for s in spans:
        w = s["attrs"].get(attr.QUEUE_WAIT)
        if _op(s) in (attr.OP_QUEUE_RECEIVE, attr.OP_QUEUE_PROCESS) and isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0:
            for target in (list(dict.fromkeys(s["links"])) or [s["trace"]]):
                waits[target] += int(w * 1e9)
    for trace_id, tree in by_trace.items():
        if not any(_op(s) == attr.OP_SEND for s in tree.values()):
            continue

        def ancestors(s):
            seen = []
            p = s["parent"]
            while p in tree and len(seen) < 256:
                seen.append(tree[p])
                p = tree[p]["parent"]
            return seen

        def role(s):
            op = _op(s)
            if op in (attr.OP_PERSONALIZE, attr.OP_TEMPLATE_LOAD, attr.OP_SMTP_CONNECT, attr.OP_SEND):
                return op
            if op is None and (attr.DB_SYSTEM in s["attrs"] or attr.DB_SYSTEM_NAME in s["attrs"]):
                return "db"
            return None

        stage = dict.fromkeys(stages, 0)
        pers = inside = send = connect_in_send = 0
        n_sends = 0
        for s in tree.values():
            r = role(s)
            up = {role(a) for a in ancestors(s)}
            d = s["end"] - s["start"]
            if r == attr.OP_PERSONALIZE and attr.OP_PERSONALIZE not in up:
                pers += d
            elif r == "db" and attr.OP_PERSONALIZE in up and "db" not in up:
                stage["db"] += d
                inside += d
            elif r == attr.OP_TEMPLATE_LOAD and attr.OP_TEMPLATE_LOAD not in up:
                stage["template_load"] += d
                if attr.OP_PERSONALIZE in up:
                    inside += d
            elif r == attr.OP_SMTP_CONNECT and attr.OP_SMTP_CONNECT not in up:
                stage["smtp_connect"] += d
                if attr.OP_SEND in up:
                    connect_in_send += d
            elif r == attr.OP_SEND and attr.OP_SEND not in up:
                send += d
                n_sends += 1
        stage["personalization"] = max(0, pers - inside)
        stage["send"] = max(0, send - connect_in_send)
        stage["queue_wait"] = waits[trace_id]
        journeys += 1
        emails += n_sends
        for k in stages:
            totals[k] += stage[k]
        worst = max(stages, key=lambda k: stage[k])
        if stage[worst] > 0:
            bottlenecks[worst] += 1
    return {"journeys": journeys, "emails": emails, "totals_ns": totals, "bottlenecks": bottlenecks}


def _templates(spans: list[dict]) -> dict:
    """Per engine: loads, loads with cache info, hits, renders, renders with missing variables; and the
    (template, variable) pairs of renders that lacked them."""
    engines = defaultdict(lambda: [0, 0, 0, 0, 0])
    missing = Counter()
    for s in spans:
        a = s["attrs"]
        if _op(s) == attr.OP_TEMPLATE_LOAD:
            e = engines[a.get(attr.TEMPLATE_ENGINE, "unknown")]
            e[0] += 1
            if isinstance(a.get(attr.TEMPLATE_CACHE_HIT), bool):
                e[1] += 1
                e[2] += a[attr.TEMPLATE_CACHE_HIT]
        elif _op(s) == attr.OP_PERSONALIZE:
            e = engines[a.get(attr.TEMPLATE_ENGINE, "unknown")]
            e[3] += 1
            names = a.get(attr.PERSONALIZATION_MISSING_NAMES) or []
            if names:
                e[4] += 1
                for name in set(names):
                    missing[(a.get(attr.TEMPLATE_NAME, "unknown"), name)] += 1
    return {"engines": {k: tuple(v) for k, v in engines.items()}, "missing": dict(missing)}


def compute(spans: list[dict]) -> dict:
    ops = defaultdict(lambda: {"durations": [], "errors": 0, "memory": []})
    for s in spans:
        key = _op(s) or s["name"]
        o = ops[key]
        o["durations"].append((s["end"] - s["start"]) / 1e6)
        o["errors"] += s["error"]
        delta = s["attrs"].get(attr.MEMORY_RSS_DELTA)
        if isinstance(delta, int) and not isinstance(delta, bool):
            o["memory"].append(delta)
    sends = [s for s in spans if _op(s) == attr.OP_SEND]
    loads = [s for s in spans if _op(s) == attr.OP_TEMPLATE_LOAD and isinstance(s["attrs"].get(attr.TEMPLATE_CACHE_HIT), bool)]

    slow = Counter()
    consistent = Counter()
    for s in spans:
        if s["attrs"].get(attr.SLOW) is True:
            slow[(s["name"], s["attrs"].get(attr.SLOW_REASON, "unknown"))] += 1
            if s["attrs"].get(attr.SLOW_CONSISTENT) is True:
                consistent[s["name"]] += 1

    # error occurrences: error spans whose parent does not carry the same pattern
    index = {(s["trace"], s["id"]): s for s in spans}
    occurrences = Counter()
    error_spans_by_key = Counter()
    by_category = Counter()
    for s in spans:
        if not _is_error_pattern_span(s):
            continue
        key = _error_key(s)
        error_spans_by_key[key] += 1
        parent = index.get((s["trace"], s["parent"]))
        if parent is not None and _is_error_pattern_span(parent) and _error_key(parent) == key:
            continue
        occurrences[key] += 1
        cat = s["attrs"].get(attr.ERROR_CATEGORY)
        by_category[cat if isinstance(cat, str) else "unknown"] += 1

    return {
        "spans": len(spans),
        "traces": len({s["trace"] for s in spans}),
        "start": min((s["start"] for s in spans), default=None),
        "end": max((s["end"] for s in spans), default=None),
        "error_spans": sum(s["error"] for s in spans),
        "services": sorted({s["service"] or "unknown" for s in spans}),
        "ops": ops,
        "emails": {
            "sent": sum(not s["error"] for s in sends),
            "failed": sum(s["error"] for s in sends),
            "recipients": sum(s["attrs"].get(attr.RECIPIENTS_COUNT, 0) for s in sends),
            "refused": sum(s["attrs"].get(attr.RECIPIENTS_REFUSED, 0) for s in sends),
        },
        "smtp": {
            "connects": sum(_op(s) == attr.OP_SMTP_CONNECT for s in spans),
            "sends": sum(s["attrs"].get(attr.PROVIDER) in (None, attr.PROVIDER_SMTP) for s in sends),
        },
        "templates": {"known": len(loads), "hits": sum(s["attrs"][attr.TEMPLATE_CACHE_HIT] for s in loads),
                      **_templates(spans)},
        "slow": slow,
        "consistent": consistent,
        "slowest_ms": sorted(((s["end"] - s["start"]) / 1e6 for s in spans), reverse=True)[:10],
        "occurrences": occurrences,
        "error_spans_by_key": error_spans_by_key,
        "by_category": by_category,
        "journey": _journeys(spans),
    }


REL = 0.0101  # the report's histograms are within 1 % of the exact nearest-rank value


def close(a, b, rel=REL, abs_=1e-9) -> bool:
    return abs(a - b) <= rel * abs(b) + abs_


def check(report: dict, exp: dict) -> None:
    """Assert that a `mailscope report --json` document agrees with `compute()` of the same file."""
    s = report["summary"]
    assert s["spans"] == exp["spans"]
    assert s["traces"] == exp["traces"] and not s["traces_estimated"]
    assert s["start_unix_nano"] == exp["start"] and s["end_unix_nano"] == exp["end"]
    assert s["error_spans"] == exp["error_spans"]
    assert s["services"] == exp["services"]
    for k, v in exp["emails"].items():
        assert s["emails"][k] == v, k

    rows = {r["key"]: r for r in report["operations"]}
    assert set(rows) == set(exp["ops"])
    for key, o in exp["ops"].items():
        r = rows[key]
        d = o["durations"]
        assert r["count"] == len(d), key
        assert r["errors"] == o["errors"], key
        for p in (50, 95, 99):
            assert close(r["latency_ms"][f"p{p}"], nearest_rank(d, p)), (key, p, r["latency_ms"], nearest_rank(d, p))
        assert close(r["latency_ms"]["max"], max(d), rel=1e-12), key
        assert close(r["latency_ms"]["mean"], sum(d) / len(d), rel=1e-9), key
        assert sum(r["latency_histogram"]) == len(d)
        if o["memory"]:
            m = r["memory_delta_bytes"]
            assert m["count"] == len(o["memory"])
            assert close(m["mean"], sum(o["memory"]) / len(o["memory"]), rel=1e-9, abs_=1e-6), key
            assert close(m["p95"], nearest_rank(o["memory"], 95)), (key, m, nearest_rank(o["memory"], 95))
        else:
            assert r["memory_delta_bytes"] is None

    assert report["smtp"] == exp["smtp"]
    t = report["templates"]
    assert t["loads_with_cache_info"] == exp["templates"]["known"]
    assert t["cache_hits"] == exp["templates"]["hits"]
    assert {e["engine"]: (e["loads"], e["loads_with_cache_info"], e["cache_hits"], e["renders"], e["renders_with_missing"])
            for e in t["by_engine"]} == exp["templates"]["engines"]
    assert {(m["template"], m["variable"]): m["renders"] for m in t["missing_variables"]} == exp["templates"]["missing"]

    sl = report["slow"]
    assert {(x["span_name"], x["reason"]): x["count"] for x in sl["by_name_reason"]} == dict(exp["slow"])
    assert {x["span_name"]: x["count"] for x in sl["consistently_slow"]} == dict(exp["consistent"])
    assert sl["total"] == sum(exp["slow"].values())
    assert [x["duration_ms"] for x in sl["slowest"]] == exp["slowest_ms"]

    er = report["errors"]
    assert {p["key"]: p["count"] for p in er["patterns"]} == dict(exp["occurrences"])
    assert {p["key"]: p["spans"] for p in er["patterns"]} == dict(exp["error_spans_by_key"])
    assert [p["count"] for p in er["patterns"]] == sorted((p["count"] for p in er["patterns"]), reverse=True)
    assert {c["category"]: c["count"] for c in er["by_category"]} == dict(exp["by_category"])
    assert sum(sum(x["counts"]) for x in er["timeline"]["series"]) == sum(exp["occurrences"].values())

    j = report["journey"]
    ej = exp["journey"]
    assert j["journeys"] == ej["journeys"] and j["emails"] == ej["emails"]
    assert j["truncated_traces"] == 0
    grand = sum(ej["totals_ns"].values())
    for st in j["stages"]:
        assert close(st["total_ms"], ej["totals_ns"][st["stage"]] / 1e6, rel=1e-9), st
        assert close(st["share"], ej["totals_ns"][st["stage"]] / grand if grand else 0.0, rel=1e-9), st
        assert st["bottleneck_journeys"] == ej["bottlenecks"][st["stage"]], st
    if ej["bottlenecks"]:
        assert ej["bottlenecks"][j["most_common_bottleneck"]] == max(ej["bottlenecks"].values())
