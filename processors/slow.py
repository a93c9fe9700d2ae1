"""Stage: mark slow spans, by a static threshold or against a learned baseline.

For every finished span (any instrumentation's):
- the static threshold is the first `MAILSCOPE_SLOW_THRESHOLDS` glob matching the
  span name (the user's entries, then the built-ins ending in `*=1000`);
- the learned baseline is the streaming p95 of that span name's recent normal
  durations (`mailscope.processors.baseline`); the span is over it when its
  duration exceeds `MAILSCOPE_SLOW_BASELINE_FACTOR` × p95, once
  `MAILSCOPE_SLOW_BASELINE_MIN_SAMPLES` samples were seen (factor 0: no baselines).

A slow span gets `mailscope.slow` = true, the reason (`threshold` wins when both
limits were crossed: it is the one an operator set), the limit it crossed in ms,
the learned p95 when one exists, and `mailscope.slow.consistent` (at least 5 of
the last 20 spans of that name were slow, this one included); it also counts
`mailscope.slow_operations`. Spans that are not slow are left untouched, so they
are forwarded without a copy.

Per-name state (baseline and the last-20 bitmask) lives in an LRU table capped
at `MAILSCOPE_MAX_TRACKED_NAMES`: a name seen again and again keeps its baseline,
a stream of one-off names only evicts other one-off names. The metric's
`span.name` label is capped at the same number with overflow `other`. One lock
guards the table and the baselines; everything after the decision runs outside it.
"""

from __future__ import annotations

from collections import OrderedDict

from mailscope import attributes as attr
from mailscope.globs import GlobMap
from mailscope.metrics import LabelCap, instruments
from mailscope.processors.baseline import LEARN_BATCH, Baseline
from mailscope.locks import owned_lock

RECENT = 20  # spans remembered per name for the consistent flag
CONSISTENT_MIN = 5  # slow spans among them that make a name consistently slow
_RECENT_MASK = (1 << RECENT) - 1


class _Times:
    """A duration as the two fields `SlowStage.quick` reads of a finished span."""

    __slots__ = ("_start_time", "_end_time")


class _NameState:
    __slots__ = ("threshold", "baseline", "recent")

    def __init__(self, threshold: float | None, baseline: Baseline | None):
        self.threshold = threshold  # the first matching MAILSCOPE_SLOW_THRESHOLDS entry, looked up once
        self.baseline = baseline
        self.recent = 0  # bit i set: the i-th most recent span was slow


class SlowStage:
    name = "slow"

    def __init__(self, config, generation: int | None = None, counter=None):
        self._thresholds = GlobMap(config.slow_thresholds)
        self._factor = float(config.slow_baseline_factor)
        self._min_samples = int(config.slow_baseline_min_samples)
        self._generation = generation
        self.max_names = int(config.max_tracked_names)
        self._states: OrderedDict[str, _NameState] = OrderedDict()
        self._lock = owned_lock(self)
        self._labels = LabelCap(self.max_names)
        self._counter = counter

    # --- inspection (tests, debugging) ------------------------------------------
    def baseline(self, name: str) -> Baseline | None:
        with self._lock:
            state = self._states.get(name)
            return state.baseline if state is not None else None

    def tracked_names(self) -> int:
        return len(self._states)

    # --- the stage ----------------------------------------------------------------
    def __call__(self, draft) -> None:
        duration = draft.duration_ns  # 0 when the span has no start or end time
        if not duration:
            span = draft.span
            if span.start_time is None or span.end_time is None:
                return
        times = _Times()
        times._start_time, times._end_time = 0, duration
        values = self.quick(times, draft.name, None)
        if values is not None:
            draft.set_attributes(values, free_text=False)  # flags, numbers and a reason constant

    def quick(self, span, name, attributes):
        """Observe one finished span's duration under `name`: the attributes of a slow span,
        else None. The pipeline's fast path calls it with the SDK span itself (it reads only
        `_start_time` and `_end_time`), the draft path with a `_Times`. It runs for every span
        the process ends, so the learned baseline's usual case (`Baseline.observe` once it is
        trusted) is inlined."""
        start, end = span._start_time, span._end_time
        if start is None or end is None:
            return None
        duration_ms = (end - start) / 1e6
        with self._lock:
            state = self._states.get(name)
            if state is None:
                state = self._admit(name)
            else:
                self._states.move_to_end(name)
            threshold = state.threshold
            over_threshold = threshold is not None and duration_ms > threshold
            baseline = state.baseline
            if baseline is not None and baseline._limit is not None:
                over_baseline = duration_ms > baseline._limit
                pending = baseline._pending
                pending.append(-duration_ms if over_baseline else duration_ms)  # as observe() keeps it
                if len(pending) >= LEARN_BATCH:
                    baseline._learn()
            else:
                if baseline is not None:
                    baseline.observe(duration_ms)  # not trusted yet: learns at once, answers (None, False)
                    baseline = None  # and this span reports no p95
                over_baseline = False
            if not (over_threshold or over_baseline):
                state.recent = (state.recent << 1) & _RECENT_MASK
                return None
            recent = state.recent = ((state.recent << 1) | 1) & _RECENT_MASK
            p95 = baseline._p95 if baseline is not None else None
        return self._slow(name, over_threshold, threshold, p95, recent)

    def _slow(self, name: str, over_threshold: bool, threshold, p95, recent: int) -> dict:
        """The attributes of a slow span; counts it in `mailscope.slow_operations`."""
        if over_threshold:
            reason, limit = attr.SLOW_REASON_THRESHOLD, float(threshold)
        else:
            reason, limit = attr.SLOW_REASON_BASELINE, self._factor * p95
        values = {
            attr.SLOW: True,
            attr.SLOW_REASON: reason,
            attr.SLOW_THRESHOLD_MS: limit,
            attr.SLOW_CONSISTENT: recent.bit_count() >= CONSISTENT_MIN,
        }
        if p95 is not None:
            values[attr.SLOW_BASELINE_P95_MS] = p95
        counter = self._counter
        if counter is None:
            counter = self._counter = instruments().slow_operations
        counter.add(1, {attr.LABEL_SPAN_NAME: self._labels(name), attr.SLOW_REASON: reason})
        return values

    def _admit(self, name: str) -> _NameState:
        """New per-name state (caller holds the lock); the least recently seen name makes room."""
        states = self._states
        while len(states) >= self.max_names:
            states.popitem(last=False)
        baseline = None
        if self._factor > 0:
            baseline = Baseline(self._factor, self._min_samples, self._generation)
        state = states[name] = _NameState(self._thresholds.lookup(name), baseline)
        return state
