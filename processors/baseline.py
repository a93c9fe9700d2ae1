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
`generation`..2×`generation` spans and follows a drifting normal. It is
recomputed every `REFRESH_EVERY` samples and at each rotation (cached between).

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

QUANTILE = 0.95
RELATIVE_ACCURACY = 0.01
MIN_VALUE = 1e-3  # smaller values (ms) share the lowest bucket
DEFAULT_GENERATION = 500
REFRESH_EVERY = 32


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
    total = sum(h.total for h in histograms)
    if total == 0:
        return None
    if len(histograms) == 1:
        counts = histograms[0].counts
    else:
        counts = {}
        for h in histograms:
            for index, count in h.counts.items():
                counts[index] = counts.get(index, 0) + count
    rank = q * (total - 1)
    seen = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen > rank:
            return mapping.value(index)
    return mapping.value(max(counts))  # unreachable with consistent counts


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
        "_previous_heavy",
        "_p95",
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
        self._previous_heavy = False
        self._p95: float | None = None
        self._since_refresh = 0
        self.adoptions = 0  # times a sustained change was adopted as the new normal

    @property
    def p95(self) -> float | None:
        """The trusted p95 (None until `min_samples` normal samples were seen)."""
        return self._p95

    def observe(self, value: float) -> tuple[float | None, bool]:
        """Return (p95 compared against or None, value > factor × p95), then learn from value."""
        p95 = self._p95
        over = p95 is not None and value > self.factor * p95
        index = self.mapping.index(value)
        if over:
            self._outliers.add(index)
        else:
            self._current.add(index)
        if self._current.total + self._outliers.total >= self.generation:
            self._rotate()
        else:
            self._since_refresh += 1
            if self._since_refresh >= REFRESH_EVERY or (
                p95 is None and self._previous.total + self._current.total >= self.min_samples
            ):
                self._refresh()
        return p95, over

    def _refresh(self) -> None:
        self._since_refresh = 0
        if self._previous.total + self._current.total >= self.min_samples:
            self._p95 = quantile((self._previous, self._current), QUANTILE, self.mapping)
        # else: keep the last trusted value through an outlier-heavy stretch

    def _rotate(self) -> None:
        current, outliers = self._current, self._outliers
        heavy = outliers.total > (1.0 - QUANTILE) * (current.total + outliers.total)
        if heavy and self._previous_heavy:
            current.merge(outliers)  # sustained: the new normal
            heavy = False
            self.adoptions += 1
        self._previous = current
        self._previous_heavy = heavy
        self._current = LogHistogram()
        self._outliers = LogHistogram()
        self._refresh()

    def buckets(self) -> int:
        """Occupied buckets (memory held), for tests and benchmarks."""
        return len(self._previous.counts) + len(self._current.counts) + len(self._outliers.counts)
