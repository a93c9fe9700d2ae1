"""The p95 estimator behind the learned baselines: accuracy against an exact p95, and the window."""

import math
import random

import pytest

from mailscope.processors.baseline import DEFAULT_MAPPING, Baseline, LogHistogram, LogMapping, quantile


def exact(values, q=0.95):
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


SHAPES = {
    "lognormal": lambda rng: rng.lognormvariate(math.log(8), 0.6),
    "bimodal": lambda rng: rng.lognormvariate(0.5, 0.2) if rng.random() < 0.9 else rng.lognormvariate(3.7, 0.3),
    "pareto": lambda rng: 3 * rng.paretovariate(1.5),
    "tiny": lambda rng: rng.uniform(0.0005, 0.004),  # sub-µs to µs spans, around MIN_VALUE
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_log_histogram_quantiles_are_within_the_relative_accuracy(shape):
    rng = random.Random(shape)
    values = [SHAPES[shape](rng) for _ in range(5000)]
    histogram = LogHistogram()
    for v in values:
        histogram.add(DEFAULT_MAPPING.index(v))
    for q in (0.5, 0.95, 0.99):
        truth = exact(values, q)
        got = quantile((histogram,), q)
        if truth <= DEFAULT_MAPPING.min_value:
            assert got == DEFAULT_MAPPING.min_value
        else:
            assert got == pytest.approx(truth, rel=DEFAULT_MAPPING.relative_accuracy + 1e-9), (shape, q)


def test_mapping_round_trip_error_is_bounded():
    mapping = LogMapping(relative_accuracy=0.02)
    for value in (0.0011, 0.5, 1.0, 7.3, 999.0, 123456.0):
        assert mapping.value(mapping.index(value)) == pytest.approx(value, rel=0.02 + 1e-12)
    assert mapping.value(mapping.index(0.0)) == mapping.min_value


def test_quantile_over_two_generations_equals_quantile_over_their_union():
    rng = random.Random(4)
    a, b = LogHistogram(), LogHistogram()
    values_a = [rng.uniform(1, 10) for _ in range(300)]
    values_b = [rng.uniform(5, 50) for _ in range(300)]
    both = LogHistogram()
    for v in values_a:
        a.add(DEFAULT_MAPPING.index(v))
        both.add(DEFAULT_MAPPING.index(v))
    for v in values_b:
        b.add(DEFAULT_MAPPING.index(v))
        both.add(DEFAULT_MAPPING.index(v))
    assert quantile((a, b), 0.95) == quantile((both,), 0.95)
    assert quantile((LogHistogram(),), 0.95) is None


def test_baseline_window_is_bounded_and_p95_matches_the_recent_spans():
    baseline = Baseline(factor=3.0, min_samples=100, generation=500)
    rng = random.Random(8)
    values = [rng.uniform(1.0, 5.0) for _ in range(5250)]  # never over 3 x p95: no outliers
    for v in values:
        baseline.observe(v)
    baseline.flush()
    # 5250 = 10 full generations + 250: the window holds the previous generation and the current 250
    assert baseline.window_total() == 750
    assert baseline.p95 == pytest.approx(exact(values[-750:]), rel=0.03)
    assert baseline.buckets() < 400  # bounded by the spread of values, not by their number
