"""A learned baseline for one span name: streaming p95 of its recent normal durations.

Estimator: a log-bucket histogram (the DDSketch mapping). A value v > 0 falls in
bucket ceil(log(v) / log(gamma)) with gamma = (1 + a) / (1 - a); the bucket's
representative value is within a relative error `a` (1 %) of every value in it.
An update is one `log` and one dict increment; memory is one counter per
occupied bucket (a 10x spread of durations occupies about 115 buckets), not one
slot per sample. `python -m benchmarks baseline` compares it with an exact sorted
window, an HDR-style histogram and P² on accuracy, cost per update and memory;
that comparison is why this one was chosen.

Window: two generations of `generation` samples. The p95 is taken over the
previous and the current generation, so it always reflects the last
`generation`..2×`generation` spans and follows a drifting normal. The two
generations are also kept summed, so the p95 (recomputed every `REFRESH_EVERY`
samples and at each rotation, cached between) is one sort of the occupied
buckets and a short walk down from the top.

Slow spans must not teach the baseline that slow is normal: a value above
factor × p95 is an *outlier* and is kept out of the window. If outliers were
more than 5 % of a generation (enough to move the p95 by themselves) in two
generations in a row, the slowness is a new normal: the second generation is
adopted whole, outliers included. So a sustained slowdown is reported for
between one and two generations of spans (500–1000 by default) and is then
learned, while short incidents never enter the baseline.
"""

from __future__ import annotations

import math
from collections import _count_elements  # C: counts an iterable's items into a dict

QUANTILE = 0.95
RELATIVE_ACCURACY = 0.01
MIN_VALUE = 1e-3  # smaller values (ms) share the lowest bucket
DEFAULT_GENERATION = 500
REFRESH_EVERY = 64
LEARN_BATCH = 32


class LogMapping:
    """value <-> bucket index with a bounded relative error."""

    __slots__ = ("relative_accuracy", "gamma", "_multiplier", "_min_index", "min_value")

    def __init__(self, relative_accuracy: float = RELATIVE_ACCURACY, min_value: float = MIN_VALUE):
        self.relative_accuracy = relative_accuracy
        self.gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._multiplier = 1.0 / math.log(self.gamma)
        self.min_value = min_value
        self._min_index = math.ceil(math.log(min_value) * self._multiplier)

    def index(self, value: float) -> int:
        if value <= self.min_value:
            return self._min_index
        return math.ceil(math.log(value) * self._multiplier)

    def value(self, index: int) -> float:
        """The representative value of a bucket: within relative_accuracy of all its members."""
        if index <= self._min_index:
            return self.min_value
        return 2.0 * self.gamma**index / (self.gamma + 1.0)


DEFAULT_MAPPING = LogMapping()


class LogHistogram:
    __slots__ = ("counts", "total")

    def __init__(self):
        self.counts: dict[int, int] = {}
        self.total = 0

    def add(self, index: int) -> None:
        counts = self.counts
        counts[index] = counts.get(index, 0) + 1
        self.total += 1

    def merge(self, other: "LogHistogram") -> None:
        counts = self.counts
        for index, count in other.counts.items():
            counts[index] = counts.get(index, 0) + count
        self.total += other.total


def quantile(histograms, q: float, mapping: LogMapping = DEFAULT_MAPPING) -> float | None:
    """The q-quantile over the union of `histograms` (None when empty)."""
    if len(histograms) == 1:
        counts, total = histograms[0].counts, histograms[0].total
    else:
        counts, total = {}, 0
        for h in histograms:
            total += h.total
            for index, count in h.counts.items():
                counts[index] = counts.get(index, 0) + count
    return quantile_of_counts(counts, total, q, mapping)


def quantile_of_counts(counts: dict, total: int, q: float, mapping: LogMapping = DEFAULT_MAPPING) -> float | None:
    """The value at rank q x (total - 1), found from the top: a high quantile needs few steps."""
    if total <= 0:
        return None
    needed = total - q * (total - 1)  # samples at or above the answer's bucket
    seen = 0
    for index in sorted(counts, reverse=True):
        seen += counts[index]
        if seen >= needed:
            return mapping.value(index)
    return mapping.value(min(counts))


class Baseline:
    """Per-name learned p95; `observe(value)` compares against it and then learns."""

    __slots__ = (
        "factor",
        "min_samples",
        "generation",
        "mapping",
        "_previous",
        "_current",
        "_outliers",
        "_window",
        "_window_total",
        "_previous_heavy",
        "_p95",
        "_limit",
        "_pending",
        "_since_refresh",
        "adoptions",
    )

    def __init__(
        self,
        factor: float,
        min_samples: int,
        generation: int | None = None,
        mapping: LogMapping = DEFAULT_MAPPING,
    ):
        self.factor = factor
        self.min_samples = min_samples
        self.generation = max(generation or DEFAULT_GENERATION, min_samples)
        self.mapping = mapping
        self._previous = LogHistogram()
        self._current = LogHistogram()
        self._outliers = LogHistogram()
        # previous + current normal samples, kept summed so a refresh needs no merge
        self._window: dict[int, int] = {}
        self._window_total = 0
        self._previous_heavy = False
        self._p95: float | None = None
        self._limit: float | None = None  # factor x p95
        # values judged but not yet learned; an outlier is stored negated
        self._pending: list[float] = []
        self._since_refresh = 0
        self.adoptions = 0  # times a sustained change was adopted as the new normal

    @property
    def p95(self) -> float | None:
        """The trusted p95 (None until `min_samples` normal samples were seen)."""
        return self._p95

    def observe(self, value: float) -> tuple[float | None, bool]:
        """Return (p95 compared against or None, value > factor × p95), then learn from value.

        Once trusted, values are learned in batches of `LEARN_BATCH` (one call
        that loops with everything in locals costs far less than one per span);
        the comparison itself always uses the current p95.
        """
        limit = self._limit
        if limit is None:
            self._pending.append(value)
            self._learn()  # untrusted: learn at once, so the baseline exists at exactly min_samples
            return None, False
        over = value > limit
        pending = self._pending
        pending.append(-value if over else value)
        if len(pending) >= LEARN_BATCH:
            self._learn()
        return self._p95, over

    def flush(self) -> None:
        """Learn the values still pending (tests, inspection)."""
        if self._pending:
            self._learn()

    def _learn(self) -> None:
        pending, self._pending = self._pending, []
        generation = self.generation
        end = len(pending)
        start = 0
        rotated = False
        while start < end:
            # the values up to the next rotation: within one generation their order does not matter
            room = generation - self._current.total - self._outliers.total
            stop = end if end - start <= room else start + room
            chunk = pending if start == 0 and stop == end else pending[start:stop]
            start = stop
            min_value = self.mapping.min_value
            if min(chunk) > min_value:
                self._learn_normal(chunk)  # the common case: no outlier (stored negated), no tiny value
            else:
                self._learn_normal([v for v in chunk if v > min_value])
                self._learn_each([v for v in chunk if v <= min_value])
            if self._current.total + self._outliers.total >= generation:
                self._rotate()
                rotated = True
        self._since_refresh += end
        if rotated or self._since_refresh >= REFRESH_EVERY or (
            self._p95 is None and self._window_total >= self.min_samples
        ):
            self._refresh()

    def _learn_normal(self, values) -> None:
        """Count normal values above the mapping's minimum into the current generation and the
        window: the bucket indexes are computed and counted in C (`ceil(log(v) * multiplier)`,
        the same arithmetic as `LogMapping.index`), then merged per occupied bucket."""
        if not values:
            return
        found: dict[int, int] = {}
        _count_elements(found, map(math.ceil, map(self.mapping._multiplier.__mul__, map(math.log, values))))
        counts, window = self._current.counts, self._window
        for index, count in found.items():
            counts[index] = counts.get(index, 0) + count
            window[index] = window.get(index, 0) + count
        self._current.total += len(values)
        self._window_total += len(values)

    def _learn_each(self, values) -> None:
        """Count values one by one (outliers are stored negated); no rotation falls inside."""
        mapping = self.mapping
        multiplier, min_value, min_index = mapping._multiplier, mapping.min_value, mapping._min_index
        log, ceil = math.log, math.ceil
        current, outliers, window = self._current, self._outliers, self._window
        for value in values:
            outlier = value < 0
            if outlier:
                value = -value
            index = min_index if value <= min_value else ceil(log(value) * multiplier)
            if outlier:
                counts = outliers.counts
                counts[index] = counts.get(index, 0) + 1
                outliers.total += 1
            else:
                counts = current.counts
                counts[index] = counts.get(index, 0) + 1
                current.total += 1
                window[index] = window.get(index, 0) + 1
                self._window_total += 1

    def _refresh(self) -> None:
        self._since_refresh = 0
        if self._window_total >= self.min_samples:
            self._p95 = quantile_of_counts(self._window, self._window_total, QUANTILE, self.mapping)
            self._limit = self.factor * self._p95
        # else: keep the last trusted value through an outlier-heavy stretch

    def _rotate(self) -> None:
        current, outliers, window = self._current, self._outliers, self._window
        heavy = outliers.total > (1.0 - QUANTILE) * (current.total + outliers.total)
        # the previous generation leaves the window
        for index, count in self._previous.counts.items():
            left = window[index] - count
            if left:
                window[index] = left
            else:
                del window[index]
        self._window_total -= self._previous.total
        if heavy and self._previous_heavy:
            current.merge(outliers)  # sustained: the new normal
            for index, count in outliers.counts.items():
                window[index] = window.get(index, 0) + count
            self._window_total += outliers.total
            heavy = False
            self.adoptions += 1
        self._previous = current
        self._previous_heavy = heavy
        self._current = LogHistogram()
        self._outliers = LogHistogram()

    def samples(self) -> int:
        """Samples observed in the current generation (learned or pending)."""
        return self._current.total + self._outliers.total + len(self._pending)

    def window_total(self) -> int:
        """Normal samples the p95 is taken over (previous + current generation)."""
        return self._window_total

    def buckets(self) -> int:
        """Occupied buckets (memory held), for tests and benchmarks."""
        return len(self._previous.counts) + len(self._current.counts) + len(self._outliers.counts) + len(self._window)
