"""Batched learning (`Baseline._learn`) keeps the same state as learning one value at a time.

The reference below is the plain per-value algorithm: each value in arrival order goes to
the outliers or to the current generation and the window, and a generation rotates as soon
as it is full. The batched code must agree on every answer of `observe` and on every count.
"""

import math
import random

import pytest

from mailscope.processors.baseline import REFRESH_EVERY, Baseline


class OneByOne(Baseline):
    __slots__ = ()

    def _learn(self) -> None:
        pending, self._pending = self._pending, []
        mapping = self.mapping
        rotated = False
        for value in pending:
            outlier = value < 0
            if outlier:
                value = -value
            index = mapping.index(value)
            if outlier:
                self._outliers.add(index)
            else:
                self._current.add(index)
                self._window[index] = self._window.get(index, 0) + 1
                self._window_total += 1
            if self._current.total + self._outliers.total >= self.generation:
                self._rotate()
                rotated = True
        self._since_refresh += len(pending)
        if rotated or self._since_refresh >= REFRESH_EVERY or (
            self._p95 is None and self._window_total >= self.min_samples
        ):
            self._refresh()


def state(b):
    return (
        dict(b._previous.counts), b._previous.total, dict(b._current.counts), b._current.total,
        dict(b._outliers.counts), b._outliers.total, {k: v for k, v in b._window.items() if v},
        b._window_total, b._p95, b._limit, b.adoptions, b._previous_heavy, list(b._pending),
    )


def stream(rng, n):
    """Normal durations with slow bursts (outliers, then a sustained slowdown that is adopted),
    zeros and values around the mapping's minimum (1 µs)."""
    for i in range(n):
        roll = rng.random()
        if 3000 <= i < 4500:
            yield rng.uniform(80, 120)  # sustained: adopted as the new normal
        elif roll < 0.02:
            yield rng.uniform(100, 500)  # short incidents
        elif roll < 0.03:
            yield rng.choice([0.0, 0.0005, 0.001, 0.0011])
        else:
            yield rng.lognormvariate(math.log(8), 0.4)


@pytest.mark.parametrize("generation,min_samples,factor", [(500, 100, 3.0), (37, 10, 2.0), (100, 100, 0.5)])
def test_batched_learning_matches_learning_one_value_at_a_time(generation, min_samples, factor):
    batched = Baseline(factor, min_samples, generation)
    reference = OneByOne(factor, min_samples, generation)
    rng = random.Random(generation)
    for i, value in enumerate(stream(rng, 6000)):
        assert batched.observe(value) == reference.observe(value), i
        if i % 97 == 0:
            assert state(batched) == state(reference), i
    assert batched.adoptions >= 1  # the sustained slowdown was learned
    batched.flush()
    reference.flush()
    assert state(batched) == state(reference)
