"""`mailscope report` against an independent computation, on generated trace files.

The CLI runs as users run it (`python -m mailscope report`, a subprocess); the
expected numbers come from tests/support/report_oracle.py, which parses the same
file itself and computes exact values from full lists and trace trees.
"""

import json
import subprocess
import sys

import pytest

from mailscope import attributes as attr
from tests.support import report_oracle as oracle
from tests.support.launcher import REPO, base_env
from tests.support.otlp_gen import START_NS, write_trace_file


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mailscope", "report", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, env=env or base_env(), timeout=120)


def report_json(*args, env=None) -> dict:
    result = run_cli(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "traces.jsonl"
    write_trace_file(path, 12_000, seed=11, services=2, leak_bytes_per_send=8192, error_rate=0.06, spans_per_line=97)
    return path, oracle.load(path)


def test_report_matches_independent_computation(generated):
    path, spans = generated
    report = report_json(path)
    assert report["schema"] == "mailscope.report/1"
    expected = oracle.compute(spans)
    assert expected["journey"]["journeys"] > 1000 and expected["occurrences"]  # the file has what we check
    oracle.check(report, expected)
    assert report["inputs"]["skipped"]["total"] == 0


def test_recommendation_rules_fire_on_what_the_file_shows(generated):
    path, spans = generated
    report = report_json(path)
    rules = {r["rule"] for r in report["recommendations"]}
    subjects = {(r["rule"], r["subject"]) for r in report["recommendations"]}
    # the generator's sender_auth errors, its recurring patterns, its leaking send spans
    assert "sender_auth" in rules
    assert ("recurring_error", "a1f0c3d2e4b5a697") in subjects
    assert ("memory_growth", attr.SPAN_SEND) in subjects
    assert not any(r == "memory_growth" and s != attr.SPAN_SEND for r, s in subjects)  # RSS is process-wide
    # one connection per ten sends is reuse; cache hits are 80 %
    assert "smtp_connection_per_send" not in rules and "low_template_cache_hit" not in rules
    severities = [r["severity"] for r in report["recommendations"]]
    assert severities == sorted(severities, key=["critical", "warning", "info"].index)


def test_rules_for_connections_cache_and_dominant_categories(tmp_path):
    from mailscope.report.rules import recommendations

    path = tmp_path / "t.jsonl"
    write_trace_file(path, 3000, seed=3, error_rate=0.3)
    report = report_json(path)
    base = {r["rule"] for r in report["recommendations"]}
    assert "smtp_connection_per_send" not in base
    # The same report with the numbers changed the way a worker without reuse, a
    # cold cache, or a bounce-heavy list would change them.
    report["smtp"] = {"connects": 100, "sends": 100}
    report["templates"] = {"loads": 50, "loads_with_cache_info": 50, "cache_hits": 10, "hit_ratio": 0.2}
    report["errors"]["by_category"] = [
        {"category": "recipient", "count": 30, "retryable_count": 0, "spans": 30, "suggested_action": ""},
        {"category": "rate_limit", "count": 10, "retryable_count": 10, "spans": 10, "suggested_action": ""},
    ]
    rules = {r["rule"] for r in recommendations(report)}
    assert {"smtp_connection_per_send", "low_template_cache_hit", "recipient_dominant"} <= rules
    assert "retryable_dominant" not in rules and "sender_auth" not in rules
    report["errors"]["by_category"][1]["count"] = report["errors"]["by_category"][1]["retryable_count"] = 40
    rules = {r["rule"] for r in recommendations(report)}
    assert "retryable_dominant" in rules and "recipient_dominant" not in rules


def test_p95_threshold_rule_uses_configured_thresholds(tmp_path):
    path = tmp_path / "t.jsonl"
    write_trace_file(path, 3000, seed=5)
    default = report_json(path)
    send = next(r for r in default["operations"] if r["key"] == attr.OP_SEND)
    assert send["threshold_ms"] == 2000.0
    assert ("p95_over_threshold", attr.OP_SEND) not in {(r["rule"], r["subject"]) for r in default["recommendations"]}
    # the report honours MAILSCOPE_SLOW_THRESHOLDS of the environment it runs in
    limit = send["latency_ms"]["p95"] / 2
    tight = report_json(path, env=base_env(MAILSCOPE_SLOW_THRESHOLDS=f"email.send={limit}"))
    send = next(r for r in tight["operations"] if r["key"] == attr.OP_SEND)
    assert send["threshold_ms"] == limit
    assert ("p95_over_threshold", attr.OP_SEND) in {(r["rule"], r["subject"]) for r in tight["recommendations"]}


def test_filters(generated):
    path, spans = generated
    service = "newsletter-worker-1"
    only = report_json(path, "--service", service)
    oracle.check(only, oracle.compute([s for s in spans if s["service"] == service]))
    assert only["inputs"]["filters"]["service"] == service

    since = START_NS + 60 * 10**9
    until = START_NS + 180 * 10**9
    window = report_json(path, "--since", "2026-01-01T00:01:00Z", "--until", str(until // 10**9))
    oracle.check(window, oracle.compute([s for s in spans if since <= s["start"] < until]))

    sends = report_json(path, "--operation", attr.OP_SEND)
    assert [r["key"] for r in sends["operations"]] == [attr.OP_SEND]
    oracle.check(sends, oracle.compute([s for s in spans if s["attrs"].get(attr.OPERATION) == attr.OP_SEND]))
    by_name = report_json(path, "--operation", "SELECT *")
    assert [r["key"] for r in by_name["operations"]] == ["SELECT newsletter"]


def test_terminal_view(generated):
    path, _ = generated
    result = run_cli(path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("OPERATIONS", "EMAIL JOURNEY", "SLOW OPERATIONS", "ERROR PATTERNS", "RECOMMENDATIONS"):
        assert heading in out
    assert "\033[" not in out  # not a TTY: no colour
    assert " ms" in out and "most common bottleneck: queue_wait" in out
    report = report_json(path)
    assert f"{report['summary']['spans']:,}" in out
    top = report["slow"]["slowest"][0]
    assert top["trace_id"] in out


def test_terminal_colour_only_on_a_tty(generated):
    import os
    import pty

    path, _ = generated
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mailscope", "report", str(path)], stdout=follower,
                            stderr=subprocess.PIPE, cwd=REPO, env=base_env())
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(leader)
    assert proc.returncode == 0
    assert b"\033[1m" in b"".join(chunks)


def _split_like_producer_and_worker(source, producer, worker):
    """Rewrite one generated file as two processes' files: personalization in the producer's,
    queue receive/send in the worker's; each receive span starts its own trace and links to the message's."""
    import random

    rng = random.Random(9)
    worker_side = {attr.OP_QUEUE_RECEIVE, attr.OP_QUEUE_PROCESS, attr.OP_SMTP_CONNECT, attr.OP_SEND}
    with open(source) as src, open(producer, "w") as p_out, open(worker, "w") as w_out:
        for line in src:
            doc = json.loads(line)
            parts = {"p": [], "w": []}
            for rs in doc["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for span in ss["spans"]:
                        ops = [kv["value"].get("stringValue") for kv in span.get("attributes", []) if kv["key"] == attr.OPERATION]
                        side = "w" if ops and ops[0] in worker_side else "p"
                        if ops and ops[0] == attr.OP_QUEUE_RECEIVE:
                            span["links"] = [{"traceId": span["traceId"], "spanId": span.get("parentSpanId", "")}]
                            span["traceId"] = f"{rng.getrandbits(128):032x}"
                            span.pop("parentSpanId", None)
                        parts[side].append((rs["resource"], span))
            for side, out in (("p", p_out), ("w", w_out)):
                if parts[side]:
                    out.write(json.dumps({"resourceSpans": [{"resource": r, "scopeSpans": [{"spans": [s]}]}
                                                            for r, s in parts[side]]}) + "\n")


def test_journeys_join_across_files_and_links(tmp_path):
    """Producer and worker files read one after the other, with an open-trace window far smaller than
    either file: fragments of each trace are joined, and queue wait follows the receive span's link."""
    from mailscope.exporters.otlp_file import SpanReader
    from mailscope.report.journey import JourneyTracker
    from mailscope.report.model import ReportModel

    source = tmp_path / "all.jsonl"
    write_trace_file(source, 4000, seed=13)
    producer, worker = tmp_path / "producer.jsonl", tmp_path / "worker.jsonl"
    _split_like_producer_and_worker(source, producer, worker)
    spans = oracle.load(producer) + oracle.load(worker)
    expected = oracle.compute(spans)
    assert sum(expected["journey"]["totals_ns"].values()) > 0 and expected["journey"]["totals_ns"]["queue_wait"] > 0
    for order in ((producer, worker), (worker, producer)):
        model = ReportModel(journeys=JourneyTracker(max_open_traces=40, max_open_spans=300, remember_closed=100_000))
        for span in SpanReader([str(p) for p in order]):
            model.add(span)
        report = model.result({})
        oracle.check(report, expected)
        assert report["journey"]["split_traces"] > 500
        assert model.journeys.peak_open_traces <= 41 and model.journeys.peak_open_spans <= 400


def test_every_contract_error_category_has_a_suggested_action():
    from mailscope.report.rules import CATEGORY_ACTIONS, action_for

    assert set(CATEGORY_ACTIONS) == set(attr.ERROR_CATEGORIES)
    assert action_for("not-a-category") == CATEGORY_ACTIONS["unknown"] == action_for(None)
