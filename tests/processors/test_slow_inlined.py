"""The slow stage's per-span path inlines the learned baseline's usual case (`Baseline.observe`
once trusted). Its answers must be those of the plain rule, spelled out here with
`Baseline.observe` itself: slow over the first matching threshold or over factor x p95 (once
`min_samples` were seen), the threshold reason first, the p95 reported when it was compared.
"""

import random

from opentelemetry.sdk.trace import ReadableSpan

from mailscope import attributes as attr
from mailscope.config import load_settings
from mailscope.processors.baseline import Baseline
from mailscope.processors.draft import SpanDraft
from mailscope.processors.slow import CONSISTENT_MIN, RECENT, SlowStage

MS = 1_000_000
ENV = {"MAILSCOPE_SLOW_THRESHOLDS": "job=40", "MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES": "50"}


class Counter:
    def add(self, amount, attributes):
        pass


def expected_answers(durations, factor=3.0, min_samples=50, threshold=40.0):
    baseline = Baseline(factor, min_samples)
    recent = []
    for ms in durations:
        p95, over_baseline = baseline.observe(ms)
        over_threshold = ms > threshold
        slow = over_threshold or over_baseline
        recent = (recent + [slow])[-RECENT:]
        if not slow:
            yield {}
            continue
        values = {
            attr.SLOW: True,
            attr.SLOW_REASON: attr.SLOW_REASON_THRESHOLD if over_threshold else attr.SLOW_REASON_BASELINE,
            attr.SLOW_THRESHOLD_MS: threshold if over_threshold else factor * p95,
            attr.SLOW_CONSISTENT: sum(recent) >= CONSISTENT_MIN,
        }
        if p95 is not None:
            values[attr.SLOW_BASELINE_P95_MS] = p95
        yield values


def durations(n=3000):
    rng = random.Random(17)
    for i in range(n):
        roll = rng.random()
        if i in (10, 49, 50, 51):
            yield 45.0  # over the threshold around the moment the baseline becomes trusted
        elif roll < 0.03:
            yield rng.uniform(30, 45)  # over 3 x p95, some over the threshold too
        elif 2000 <= i < 2100:
            yield rng.uniform(20, 39)  # a slow stretch under the threshold
        else:
            yield rng.lognormvariate(1.0, 0.3)


def test_the_inlined_baseline_answers_as_the_plain_rule_on_both_paths():
    config = load_settings(environ=ENV)
    fast, drafted = SlowStage(config, counter=Counter()), SlowStage(config, counter=Counter())
    values = [round(ms * MS) / MS for ms in durations()]
    for i, (ms, expected) in enumerate(zip(values, expected_answers(values))):
        span = ReadableSpan(name="job", start_time=10 * MS, end_time=10 * MS + round(ms * MS))
        assert (fast.quick(span, "job", {}) or {}) == expected, i
        draft = SpanDraft(span)
        drafted(draft)
        assert dict(draft.build().attributes or {}) == expected, i
