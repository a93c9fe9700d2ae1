"""The report's bounded summaries: accuracy against exact computations, and their bounds."""

import math
import random

from hypothesis import given, settings, strategies as st

from mailscope.report.journey import DB, OTHER, PERSONALIZE, SEND, JourneyTracker
from mailscope.report.model import MAX_OPERATIONS, ReportModel
from mailscope.report.sketch import ALPHA, DistinctCounter, LogHistogram, TimeBuckets, TopK


def nearest_rank(values, percent):
    ordered = sorted(values)
    return ordered[math.ceil(percent * len(ordered) / 100) - 1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e7, 1e7, allow_nan=False), st.integers(-10**6, 10**6)), min_size=1, max_size=300),
       st.sampled_from([1, 25, 50, 90, 95, 99, 100]))
def test_quantiles_within_relative_accuracy(values, percent):
    h = LogHistogram()
    for v in values:
        h.add(v)
    exact = nearest_rank(values, percent)
    got = h.quantile(percent)
    assert abs(got - exact) <= ALPHA * abs(exact) + 1e-9
    assert h.count == len(values) and h.max == max(values) and h.min == min(values)


def test_histogram_size_does_not_grow_with_samples():
    h = LogHistogram()
    rng = random.Random(1)
    for _ in range(200_000):
        h.add(rng.lognormvariate(0, 3))  # ms from microseconds to minutes
    # buckets bounded by the value range, not by the 200k samples
    assert h.buckets() < 2000
    assert sum(h.binned([1.0, 10.0, 100.0])) == 200_000


def test_distinct_counter_exact_then_estimated():
    c = DistinctCounter(exact_cap=1000)
    for i in range(800):
        c.add(f"{i:032x}")
        c.add(f"{i:032x}")
    assert c.count() == 800 and not c.estimated
    for i in range(800, 60_000):
        c.add(f"trace-{i}")
    assert c.estimated and c.exact is None
    assert abs(c.count() - 60_000) / 60_000 < 0.03
    assert len(c.registers) == DistinctCounter.M  # fixed size


def test_topk_keeps_the_largest():
    t = TopK(10)
    values = list(range(1000))
    random.Random(3).shuffle(values)
    for v in values:
        if t.would_keep(v):
            t.add(v, {"v": v})
    assert [x["v"] for x in t.items()] == list(range(999, 989, -1))
    assert len(t.heap) == 10


def test_time_buckets_coarsen_and_keep_totals():
    tb = TimeBuckets(max_buckets=20, initial_width_ns=10**9)
    rng = random.Random(4)
    total = {"a": 0, "b": 0}
    for _ in range(5000):
        key = rng.choice("ab")
        tb.add(rng.randrange(0, 3600 * 10**9), key)  # an hour, in random order
        total[key] += 1
    start, series = tb.series(["a"])
    assert tb.hi - tb.lo + 1 <= 20
    assert sum(series[0]["counts"]) == total["a"]
    assert sum(series[1]["counts"]) == total["b"] and series[1]["key"] is None  # the rest
    assert start <= 0 + tb.width_ns


def test_journey_tracker_is_bounded_and_counts_splits():
    j = JourneyTracker(max_open_traces=50, max_open_spans=400, remember_closed=10_000)
    # traces interleaved far apart: trace i gets its send now and its parent 100 traces later
    for i in range(1000):
        j.add(f"t{i}", "send", "root", SEND, 5)
        if i >= 100:
            k = i - 100
            j.add(f"t{k}", "root", None, OTHER, 10)
        assert len(j.open) <= 50 and j.open_spans <= 400
    j.finish()
    assert j.peak_open_traces <= 51
    assert j.split_traces == 900  # the late roots arrived after their traces were finalised
    assert j.journeys == 1000


def test_journey_resolves_ancestry_in_any_arrival_order():
    spans = [("send", "root", SEND, 50), ("db", "mid", DB, 7), ("mid", "pers", OTHER, 9),
             ("pers", "root", PERSONALIZE, 20), ("db2", "root", DB, 100), ("root", None, OTHER, 200)]
    for order in (spans, spans[::-1]):
        j = JourneyTracker()
        for sid, parent, role, d in order:
            j.add("t", sid, parent, role, d)
        j.finish()
        totals = dict(j.totals)
        assert totals["db"] == 7  # db2 is outside personalization
        assert totals["personalization"] == 13
        assert totals["send"] == 50
        assert j.bottlenecks["send"] == 1


def test_model_caps_distinct_names():
    m = ReportModel(thresholds=(("*", 1000.0),))
    for i in range(MAX_OPERATIONS + 300):
        m.add({"name": f"GET /item/{i}", "trace_id": f"{i:032x}", "span_id": f"{i:016x}", "parent_span_id": None,
               "start_ns": 10**18, "end_ns": 10**18 + 1000, "attributes": {}, "events": [], "resource": {},
               "status_code": "UNSET"})
    report = m.result({})
    assert len(report["operations"]) == MAX_OPERATIONS + 1
    other = next(r for r in report["operations"] if r["key"] == "other")
    assert other["count"] == 300 and other["kind"] == "other"
