"""Slow-operation detection with controlled durations: spans are built with chosen start/end times."""

import random

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan

from mailscope import attributes as attr
from mailscope.config import DEFAULT_SLOW_THRESHOLDS, load_settings
from mailscope.processors.chain import build_stages
from mailscope.processors.draft import SpanDraft
from mailscope.processors.slow import SlowStage

MS = 1_000_000


def stage_for(env=None, **kwargs):
    config = load_settings(environ=env or {})
    return SlowStage(config, **kwargs)


def finish(stage, name, ms):
    """Run one span of `ms` milliseconds through the stage; return the exported attributes."""
    draft = SpanDraft(ReadableSpan(name=name, start_time=10 * MS, end_time=10 * MS + round(ms * MS)))
    stage(draft)
    return dict(draft.build().attributes or {})


def exact_p95(values):
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]


@pytest.fixture
def counter_reader():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("test").create_counter(attr.METRIC_SLOW_OPERATIONS)
    yield counter, reader
    provider.shutdown()


def slow_counts(reader):
    data = reader.get_metrics_data()
    counts = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == attr.METRIC_SLOW_OPERATIONS:
                    for point in metric.data.data_points:
                        key = (point.attributes[attr.LABEL_SPAN_NAME], point.attributes[attr.SLOW_REASON])
                        counts[key] = point.value
    return counts


# --- static thresholds --------------------------------------------------------
def test_user_thresholds_come_first_and_the_first_matching_glob_wins(counter_reader):
    counter, reader = counter_reader
    stage = stage_for({"MAILSCOPE_SLOW_THRESHOLDS": "db.*=5,db.query=1,email.send=100",
                       "MAILSCOPE_SLOW_BASELINE_FACTOR": "0"}, counter=counter)
    assert finish(stage, "db.query", 3) == {}  # db.* (5 ms) matched before db.query (1 ms)
    got = finish(stage, "db.query", 6)
    assert got == {
        attr.SLOW: True,
        attr.SLOW_REASON: attr.SLOW_REASON_THRESHOLD,
        attr.SLOW_THRESHOLD_MS: 5.0,
        attr.SLOW_CONSISTENT: False,
    }
    # the user's email.send=100 wins over the built-in one
    assert finish(stage, attr.SPAN_SEND, 150)[attr.SLOW_THRESHOLD_MS] == 100.0
    assert finish(stage, attr.SPAN_SEND, 90) == {}
    # an unknown name falls through to the built-in `*=1000`
    assert finish(stage, "GET /health", 999) == {}
    assert finish(stage, "GET /health", 1001)[attr.SLOW_THRESHOLD_MS] == 1000.0
    assert slow_counts(reader) == {
        ("db.query", attr.SLOW_REASON_THRESHOLD): 1,
        (attr.SPAN_SEND, attr.SLOW_REASON_THRESHOLD): 1,
        ("GET /health", attr.SLOW_REASON_THRESHOLD): 1,
    }


def test_built_in_thresholds_apply_to_mailscope_operations():
    stage = stage_for({"MAILSCOPE_SLOW_BASELINE_FACTOR": "0"})
    builtin = dict(DEFAULT_SLOW_THRESHOLDS)
    for name, probe in ((attr.SPAN_TEMPLATE_LOAD, attr.SPAN_TEMPLATE_LOAD),
                        (attr.SPAN_PERSONALIZE, attr.SPAN_PERSONALIZE),
                        (attr.SPAN_SEND, attr.SPAN_SEND),
                        ("send *", attr.queue_span_name(attr.OP_QUEUE_PUBLISH, "email:queue"))):
        limit = builtin[name]
        assert finish(stage, probe, limit * 0.9) == {}, probe
        assert finish(stage, probe, limit * 1.1)[attr.SLOW_THRESHOLD_MS] == limit, probe
    assert builtin["*"] == 1000.0 and DEFAULT_SLOW_THRESHOLDS[-1] == ("*", 1000.0)


def test_spans_that_are_not_slow_are_forwarded_without_a_copy():
    stage = stage_for()
    span = ReadableSpan(name="fine", start_time=0, end_time=2 * MS, attributes={"k": 1})
    draft = SpanDraft(span)
    stage(draft)
    assert draft.build() is span


# --- learned baselines ----------------------------------------------------------
def test_baseline_is_learned_after_min_samples_and_estimates_p95(counter_reader):
    counter, reader = counter_reader
    stage = stage_for({"MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES": "100"}, counter=counter)
    rng = random.Random(7)
    seen = []
    for _ in range(99):
        ms = rng.lognormvariate(2.0, 0.4)  # median ~7 ms, p95 ~14 ms
        seen.append(ms)
        assert finish(stage, "render", ms) == {}
    # 99 samples: no baseline yet, so even a 10x outlier is judged by the threshold only
    assert finish(stage, "render", 150) == {}
    seen.append(150)
    p95 = stage.baseline("render").p95
    assert p95 == pytest.approx(exact_p95(seen), rel=0.03)
    got = finish(stage, "render", 4 * p95)
    assert got[attr.SLOW_REASON] == attr.SLOW_REASON_BASELINE
    assert got[attr.SLOW_BASELINE_P95_MS] == pytest.approx(p95)
    assert got[attr.SLOW_THRESHOLD_MS] == pytest.approx(3 * p95)
    assert finish(stage, "render", 2.5 * p95) == {}  # within factor 3
    # a span over both limits is reported against the operator's threshold, with the p95 alongside
    both = finish(stage, "render", 1500)
    assert both[attr.SLOW_REASON] == attr.SLOW_REASON_THRESHOLD
    assert both[attr.SLOW_THRESHOLD_MS] == 1000.0
    assert both[attr.SLOW_BASELINE_P95_MS] == pytest.approx(p95, rel=0.05)
    assert slow_counts(reader) == {
        ("render", attr.SLOW_REASON_BASELINE): 1,
        ("render", attr.SLOW_REASON_THRESHOLD): 1,
    }


def test_baseline_factor_and_min_samples_come_from_settings():
    stage = stage_for({"MAILSCOPE_SLOW_BASELINE_FACTOR": "10", "MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES": "20"})
    for _ in range(20):
        finish(stage, "q", 2.0)
    assert finish(stage, "q", 19.0) == {}
    assert finish(stage, "q", 21.0)[attr.SLOW_THRESHOLD_MS] == pytest.approx(20.0, rel=0.02)
    off = stage_for({"MAILSCOPE_SLOW_BASELINE_FACTOR": "0", "MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES": "20"})
    for _ in range(200):
        finish(off, "q", 2.0)
    assert off.baseline("q") is None
    assert finish(off, "q", 500.0) == {}  # only the `*=1000` threshold remains


def test_baseline_follows_a_drifting_normal():
    stage = stage_for({"MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES": "100"})
    rng = random.Random(3)
    for _ in range(1000):
        finish(stage, "q", rng.uniform(8, 12))
    assert stage.baseline("q").p95 == pytest.approx(11.8, rel=0.03)
    # normal drifts down by half; within two generations the window has forgotten the old values
    for _ in range(1000):
        finish(stage, "q", rng.uniform(4, 6))
    assert stage.baseline("q").p95 == pytest.approx(5.9, rel=0.03)
    assert finish(stage, "q", 25)[attr.SLOW_REASON] == attr.SLOW_REASON_BASELINE  # 25 > 3 x 5.9


def test_a_sustained_slowdown_stays_detected_for_hundreds_of_spans_then_becomes_the_new_normal():
    # the operator's smtp.connect limit is far away, so only the baseline can see this slowdown
    stage = stage_for({"MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES": "100", "MAILSCOPE_SLOW_THRESHOLDS": "smtp.connect=60000"})
    rng = random.Random(11)
    for _ in range(1234):  # learned, and the slowdown starts mid-generation
        finish(stage, "smtp.connect", rng.uniform(40, 60))
    before = stage.baseline("smtp.connect").p95
    assert before == pytest.approx(59, rel=0.03)

    flags = []
    for _ in range(2500):
        got = finish(stage, "smtp.connect", rng.uniform(400, 600))  # 10x slower
        flags.append(got.get(attr.SLOW, False))
    detected_run = flags.index(False) if False in flags else len(flags)
    # every one of the first hundreds of slow spans is flagged: they did not inflate their own baseline
    assert detected_run >= 500
    assert all(flags[:detected_run])
    # ... but the slowdown persisted, so it was adopted as the new normal and later spans are not flagged
    assert detected_run <= 1000
    assert not any(flags[detected_run:])
    assert stage.baseline("smtp.connect").p95 == pytest.approx(594, rel=0.03)
    # and the new baseline detects what is slow relative to it
    assert finish(stage, "smtp.connect", 1700) == {}
    assert finish(stage, "smtp.connect", 1900)[attr.SLOW_REASON] == attr.SLOW_REASON_BASELINE


def test_a_short_incident_does_not_enter_the_baseline():
    stage = stage_for({"MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES": "100"})
    rng = random.Random(5)
    for _ in range(700):
        finish(stage, "q", rng.uniform(8, 12))
    p95 = stage.baseline("q").p95
    flagged = sum(bool(finish(stage, "q", 200.0)) for _ in range(200))  # an incident: 200 slow spans
    assert flagged == 200
    for _ in range(1000):
        finish(stage, "q", rng.uniform(8, 12))
    assert stage.baseline("q").p95 == pytest.approx(p95, rel=0.03)
    assert stage.baseline("q").adoptions == 0


# --- consistently slow ------------------------------------------------------------
def test_consistent_flag_means_five_of_the_last_twenty_spans_were_slow():
    stage = stage_for({"MAILSCOPE_SLOW_THRESHOLDS": "job=10", "MAILSCOPE_SLOW_BASELINE_FACTOR": "0"})
    pattern = []  # (duration, expected consistent or None when not slow)
    for i in range(4):
        pattern += [(20, i + 1 >= 5)] + [(1, None)] * 3
    pattern += [(20, True)]  # 5th slow within 17 spans
    pattern += [(1, None)] * 15  # now the window is [slow, 15 fast] + ... : the oldest slow spans age out
    pattern += [(20, None)]  # placeholder, computed below
    results = [finish(stage, "job", ms) for ms, _ in pattern]
    for (ms, expected), got in zip(pattern[:-1], results[:-1]):
        if expected is None:
            assert got == {}
        else:
            assert got[attr.SLOW_CONSISTENT] is expected
    # last 20 spans: positions 13..32 of the 33 -> slow ones at 16 and 32 -> 2 slow: not consistent
    assert results[-1][attr.SLOW_CONSISTENT] is False
    # five slow in a row is consistent again; a different name has its own window
    assert [finish(stage, "job", 20)[attr.SLOW_CONSISTENT] for _ in range(3)] == [False, False, True]
    assert finish(stage, "other-job", 2000)[attr.SLOW_CONSISTENT] is False


# --- caps ---------------------------------------------------------------------------
def test_tracked_names_and_metric_labels_are_capped(counter_reader):
    counter, reader = counter_reader
    stage = stage_for({"MAILSCOPE_MAX_TRACKED_NAMES": "3", "MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES": "20"},
                      counter=counter)
    for name in ("a", "b", "c"):
        for _ in range(20):
            finish(stage, name, 5.0)
    assert stage.baseline("a").p95 == pytest.approx(5.0, rel=0.02)
    finish(stage, "a", 5.0)  # "a" is used again, so "b" is now the least recently seen
    finish(stage, "d", 5.0)
    assert stage.tracked_names() == 3
    assert stage.baseline("b") is None
    assert stage.baseline("a") is not None and stage.baseline("a").p95 is not None
    for i in range(50):  # a stream of one-off names cannot grow the table
        finish(stage, f"GET /users/{i}", 1.0)
    assert stage.tracked_names() == 3
    for name in ("n1", "n2", "n3", "n4", "n5"):
        finish(stage, name, 5000.0)
    counts = slow_counts(reader)
    assert counts == {
        ("n1", attr.SLOW_REASON_THRESHOLD): 1,
        ("n2", attr.SLOW_REASON_THRESHOLD): 1,
        ("n3", attr.SLOW_REASON_THRESHOLD): 1,
        (attr.LABEL_OVERFLOW, attr.SLOW_REASON_THRESHOLD): 2,
    }


def test_the_chain_runs_slow_and_memory_after_error_type_and_before_operation_metrics():
    names = [s.name for s in build_stages(load_settings(environ={}))]
    assert names.index("error_type") < names.index("slow") < names.index("memory") < names.index("operation_metrics")
    off = [s.name for s in build_stages(load_settings(environ={"MAILSCOPE_MEMORY": "off"}))]
    assert "memory" not in off and "slow" in off
