"""The slow and memory stages on another instrumentation's spans, under the real launcher.

The app is what a team already runs: SQLAlchemy on SQLite, no mailscope import.
`opentelemetry-instrument` loads opentelemetry-instrumentation-sqlalchemy, whose
spans pass through mailscope's pipeline on their way to the JSON file.
"""

from collections import defaultdict

import pytest

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_metric_points, read_spans
from tests.support.launcher import base_env, file_export_env, run_instrumented, write_script

APP = """
import sqlite3, sys, time
from opentelemetry import trace
from sqlalchemy import create_engine, event, text

engine = create_engine("sqlite:///" + sys.argv[1])

@event.listens_for(engine, "connect")
def add_pause(dbapi_connection, record):
    # a SQL function that takes a while, so one SELECT is much slower than its peers
    dbapi_connection.create_function("pause", 1, lambda ms: time.sleep(ms / 1000) or ms)

kept = []
with trace.get_tracer("nightly").start_as_current_span("nightly-batch"):
    kept.append(bytearray(48 * 1024 * 1024))
    for offset in range(0, len(kept[0]), 4096):
        kept[0][offset] = 1
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE subscribers (id INTEGER, segment TEXT)"))
        for i in range(4):
            conn.execute(text("INSERT INTO subscribers VALUES (:i, 'weekly')"), {"i": i})
        for i in range(80):
            conn.execute(text("SELECT id FROM subscribers WHERE id = :i"), {"i": i % 4}).all()
        conn.execute(text("SELECT pause(400) FROM subscribers WHERE id = 0")).all()
print("rows", len(kept[0]))
"""


def test_sqlalchemy_spans_carry_the_analysis_attributes(tmp_path):
    traces, metrics = tmp_path / "traces.jsonl", tmp_path / "metrics.jsonl"
    env = file_export_env(
        traces, metrics,
        # any INSERT is "slow" by a tiny static limit; SELECTs are judged against their learned p95
        MAILSCOPE_SLOW_THRESHOLDS="INSERT *=0.001",
        MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES="40",
        # memory deltas go to mailscope operations by default; the job's own root span is named
        MAILSCOPE_MEMORY_SPANS="nightly-*",
    )
    result = run_instrumented(write_script(tmp_path, APP), env, tmp_path / "shop.db")
    assert result.returncode == 0, result.stderr
    assert "rows 50331648" in result.stdout  # the app's own result is unchanged

    spans = read_spans(str(traces))
    sql = [s for s in spans if s["scope"].startswith("opentelemetry.instrumentation.sqlalchemy")]
    inserts = [s for s in sql if s["name"].startswith("INSERT ")]
    selects = [s for s in sql if s["name"].startswith("SELECT ")]
    assert len(inserts) == 4 and len(selects) == 81

    for span in inserts:
        a = span["attributes"]
        assert a[attr.SLOW] is True
        assert a[attr.SLOW_REASON] == attr.SLOW_REASON_THRESHOLD
        assert a[attr.SLOW_THRESHOLD_MS] == 0.001
        assert attr.SLOW_BASELINE_P95_MS not in a  # 4 samples: no baseline yet
    assert [s["attributes"][attr.SLOW_CONSISTENT] for s in sorted(inserts, key=lambda s: s["start_ns"])] == [
        False, False, False, False,
    ]

    paused = max(selects, key=lambda s: s["end_ns"] - s["start_ns"])
    a = paused["attributes"]
    assert "pause" in a.get("db.statement", a.get("db.query.text", ""))
    assert a[attr.SLOW] is True and a[attr.SLOW_REASON] == attr.SLOW_REASON_BASELINE
    p95 = a[attr.SLOW_BASELINE_P95_MS]
    assert a[attr.SLOW_THRESHOLD_MS] == pytest.approx(3 * p95)
    # the baseline was learned from the plain SELECTs (within the sketch's 1 %)
    plain = sorted((s["end_ns"] - s["start_ns"]) / 1e6 for s in selects if s is not paused)
    assert plain[0] * 0.98 <= p95 <= plain[-1] * 1.02

    # the app's own root span, named in MAILSCOPE_MEMORY_SPANS, got the memory delta of the 48 MB it kept
    (root,) = [s for s in spans if s["name"] == "nightly-batch"]
    assert 44 * 2**20 <= root["attributes"][attr.MEMORY_RSS_DELTA] <= 60 * 2**20
    assert root["attributes"][attr.MEMORY_RSS] > root["attributes"][attr.MEMORY_RSS_DELTA]
    assert all(attr.MEMORY_RSS_DELTA not in s["attributes"] for s in sql)  # children are not measured

    # metrics: the counter by span name and reason, the memory histogram by span name
    last = {}
    for point in read_metric_points(str(metrics)):
        last[(point["name"], tuple(sorted(point["attributes"].items())))] = point
    slow = defaultdict(int)
    for (name, labels), point in last.items():
        if name == attr.METRIC_SLOW_OPERATIONS:
            labels = dict(labels)
            slow[(labels[attr.LABEL_SPAN_NAME].split()[0], labels[attr.SLOW_REASON])] += point["value"]
    assert slow[("INSERT", attr.SLOW_REASON_THRESHOLD)] == 4
    assert slow[("SELECT", attr.SLOW_REASON_BASELINE)] >= 1
    memory = [p for (name, _), p in last.items() if name == attr.METRIC_MEMORY_DELTA]
    assert [(p["attributes"][attr.LABEL_SPAN_NAME], p["count"]) for p in memory] == [("nightly-batch", 1)]


REDIS_APP = """
import sys
import redis

client = redis.Redis.from_url(sys.argv[1])
for i in range(3):
    client.set("greeting", f"hello {i}")
print("got", client.get("greeting").decode())
"""


def test_redis_spans_get_threshold_slowness_and_memory_spans_globs_reach_them(tmp_path):
    from tests.support.redis_server import RedisServer

    traces = tmp_path / "traces.jsonl"
    with RedisServer(tmp_path / "redis") as server:
        env = base_env(
            OTEL_TRACES_EXPORTER="otlp_json_file",
            OTEL_METRICS_EXPORTER="none",
            MAILSCOPE_TRACES_FILE=traces,
            MAILSCOPE_SLOW_THRESHOLDS="SET=0.001",
            MAILSCOPE_MEMORY_SPANS="GET",
        )
        result = run_instrumented(write_script(tmp_path, REDIS_APP), env, server.url)
    assert result.returncode == 0, result.stderr
    assert "got hello 2" in result.stdout

    spans = [s for s in read_spans(str(traces)) if s["scope"].startswith("opentelemetry.instrumentation.redis")]
    sets = [s["attributes"] for s in spans if s["name"] == "SET"]
    gets = [s["attributes"] for s in spans if s["name"] == "GET"]
    assert len(sets) == 3 and len(gets) == 1
    assert all(a[attr.SLOW] is True and a[attr.SLOW_THRESHOLD_MS] == 0.001 for a in sets)
    assert attr.SLOW not in gets[0]
    # every span here is a local root, yet only GET was measured: the globs replace the default
    assert attr.MEMORY_RSS in gets[0] and all(attr.MEMORY_RSS not in a for a in sets)
