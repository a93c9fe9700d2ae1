"""Histograms for hot paths: aggregated in process, handed to the SDK when metrics are collected.

An SDK `Histogram.record` costs about as much as starting a span (a Measurement,
an exemplar-filter call, attribute hashing and a lock per reader and view).
mailscope records `mailscope.operation.duration` for every operation span, so
`HotHistogram.record(value, attributes)` does less: it appends the value, its
time and context to its label set's list, and every `FOLD_EVERY` values (and at
collection) folds them under one lock into an in-process aggregate (bucket
counts, sum, min, max, and the exemplar candidates per bucket), mostly in C
calls over the whole batch. When a metric reader collects,
a hook that the SDK calls before it reads its aggregations (registered with the
provider like an observable instrument's callback, and observing nothing)
merges those aggregates into the very aggregation objects the SDK's own
`record` would have updated. The exported data is the same: the same count,
sum, min, max and bucket counts, and the same exemplars (each bucket's last
measurement the provider's exemplar filter accepts, with its own time and
context).

Where this cannot be done exactly, the value goes through the SDK's `record`
as before:
- the first value of each label set (it creates the SDK's aggregations, through
  every reader and view, which the merge then finds);
- an instrument that is not the OpenTelemetry SDK's, a disabled meter, a value
  that is negative or not finite (the SDK drops it with its warning);
- a view that gives the instrument another aggregation or other bucket
  boundaries, and an SDK whose internals are not laid out as checked at import;
- label sets beyond `limit` (the SDK's own cardinality limit then applies).
When the provider's set of metric readers changes, a label set's next value goes
through the SDK's record again and the series is admitted anew.
"""

from __future__ import annotations

import math
import weakref
from bisect import bisect_left
from collections import _count_elements  # C: counts an iterable's items into a dict
from functools import partial
from itertools import compress
from operator import itemgetter
from time import time_ns

from opentelemetry import context as _context_api
from opentelemetry.context import get_current
from opentelemetry.trace import get_current_span

from mailscope._safety import internal_error
from mailscope.locks import module_lock, owned_lock

try:  # the SDK internals the merge relies on, checked once
    from opentelemetry.sdk.metrics._internal.aggregation import _ExplicitBucketHistogramAggregation
    from opentelemetry.sdk.metrics._internal.instrument import _Histogram as _SdkHistogram
    from opentelemetry.sdk.metrics._internal.measurement import Measurement
    from opentelemetry.sdk.metrics._internal.measurement_consumer import SynchronousMeasurementConsumer

    _probe = _ExplicitBucketHistogramAggregation.__init__.__code__.co_names
    _MERGEABLE = all(
        name in _probe for name in ("_value", "_sum", "_min", "_max", "_boundaries", "_record_min_max")
    ) and all(hasattr(SynchronousMeasurementConsumer, n) for n in ("register_asynchronous_instrument", "collect"))
    del _probe
except Exception:  # pragma: no cover - another SDK
    _MERGEABLE = False
    _SdkHistogram = None

_INF = math.inf
FOLD_EVERY = 32  # measurements a series keeps before they are folded into its aggregate
_value_of, _context_of = itemgetter(0), itemgetter(2)

# the current context, read straight from the runtime's ContextVar when it is the default one
# (get_current() is two Python calls for the same answer)
try:
    from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext as _ContextVars

    _runtime = _context_api._RUNTIME_CONTEXT
    _current_context = (
        _runtime._current_context.get if type(_runtime) is _ContextVars else get_current
    )
    del _runtime
except Exception:  # pragma: no cover - another API layout
    _current_context = get_current


class _Series:
    """One label set's values since the last merge, and where they go."""

    __slots__ = ("attributes", "instrument", "storages", "aggregations", "counts", "sum", "min", "max",
                 "last", "sampled", "dirty", "pending")

    def __init__(self, attributes: dict, instrument, storages, aggregations, buckets: int):
        self.attributes = attributes
        self.instrument = instrument
        self.storages = storages  # the consumer's reader storages the aggregations were found in
        self.aggregations = aggregations  # None: this label set goes through the SDK's record
        self.counts = [0] * buckets
        self.sum = 0
        self.min = _INF
        self.max = -_INF
        self.last = [None] * buckets  # per bucket: the last (value, time, context)
        self.sampled = [None] * buckets  # per bucket: the last one recorded inside a sampled span
        self.dirty = False
        self.pending = []  # (value, time, context) not folded yet (never replaced: see HotHistogram._fold)

    def take(self):
        taken = (self.counts, self.sum, self.min, self.max, self.last, self.sampled)
        buckets = len(self.counts)
        self.counts = [0] * buckets
        self.sum = 0
        self.min = _INF
        self.max = -_INF
        self.last = [None] * buckets
        self.sampled = [None] * buckets
        self.dirty = False
        return taken


class HotHistogram:
    """`record(value, attributes)` with an SDK histogram's exported result, at a fraction of its cost.

    `instrument` is the histogram to feed (an API proxy or an SDK instrument);
    `boundaries` are its explicit bucket boundaries (its advisory).
    """

    def __init__(self, instrument, boundaries, limit: int = 2000):
        self.instrument = instrument
        self.boundaries = tuple(float(b) for b in boundaries)
        self.limit = limit
        self._buckets = len(self.boundaries) + 1
        self._bucket_of = partial(bisect_left, self.boundaries)
        self._series: dict = {}
        self._retired: list = []  # series replaced since the last flush (a new SDK or reader set)
        self._lock = owned_lock(self)
        with _registry_lock:
            _histograms.add(self)

    def record(self, value, attributes) -> None:
        instrument = self.instrument
        real = instrument if type(instrument) is _SdkHistogram else getattr(instrument, "_real_instrument", None)
        key = tuple(attributes.items())
        series = self._series.get(key)
        # The usual case first: a label set admitted on this very SDK instrument and readers
        # (a series is only admitted for a mergeable SDK histogram, so that is checked too).
        if (
            series is None
            or series.instrument is not real
            or series.aggregations is None
            or series.storages is not real._measurement_consumer._reader_storages
            or not 0 <= value < _INF
            or not real._is_enabled()
        ):
            self._record_through_sdk(instrument, real, value, attributes, key, series)
            return
        # kept as it is (list.append needs no lock) and folded in batches: see _fold
        pending = series.pending
        pending.append((value, time_ns(), _current_context()))
        if len(pending) >= FOLD_EVERY:
            with self._lock:
                self._fold(series)

    def _fold(self, series) -> None:
        """Fold a series' pending measurements into its aggregate (the caller holds the lock).

        Recording threads only append; the measurements folded are removed from the front of
        the same list, so one appended meanwhile waits for the next fold. Per bucket, the last
        measurement and the last one inside a sampled span are the exemplar candidates."""
        pending = series.pending
        n = len(pending)
        if not n:
            return
        chunk = pending[:n]
        del pending[:n]
        values = list(map(_value_of, chunk))
        indexes = list(map(self._bucket_of, values))
        found: dict = {}
        _count_elements(found, indexes)
        counts = series.counts
        for index, count in found.items():
            counts[index] += count
        series.sum += sum(values)
        low, high = min(values), max(values)
        if low < series.min:
            series.min = low
        if high > series.max:
            series.max = high
        last = series.last
        for index, measured in dict(zip(indexes, chunk)).items():  # the last one per bucket wins
            last[index] = measured
        # an empty context (a root span's end) holds no span to sample
        in_spans = list(compress(zip(indexes, chunk), map(_context_of, chunk)))
        if in_spans:
            sampled = series.sampled
            for index, measured in in_spans:
                span_context = get_current_span(measured[2]).get_span_context()
                if span_context.is_valid and span_context.trace_flags.sampled:
                    sampled[index] = measured
        series.dirty = True

    def _record_through_sdk(self, instrument, real, value, attributes, key, series) -> None:
        """A value the SDK's own record takes: no SDK yet, not mergeable, out of range, a
        disabled meter, or a label set's first value (then admitted for the merge)."""
        if real is None:
            instrument.record(value, attributes)  # not an SDK instrument, or no SDK yet
            return
        if type(real) is not _SdkHistogram or not _MERGEABLE or not 0 <= value < _INF or not real._is_enabled():
            real.record(value, attributes)
            return
        real.record(value, attributes)
        if series is None or series.aggregations is not None:
            self._admit(real, key, attributes)

    def _admit(self, real, key, attributes) -> None:
        """After the SDK recorded a label set's first value: find its aggregations for the merge."""
        consumer = real._measurement_consumer
        storages = consumer._reader_storages
        try:
            aggregations = _aggregations(real, storages, attributes, self.boundaries)
        except Exception:
            internal_error("histogram aggregations lookup")
            aggregations = None
        with self._lock:
            old = self._series.get(key)
            if old is None and len(self._series) >= self.limit:
                return  # beyond the cap every value goes through the SDK's record
            if old is not None:
                if old.instrument is real and old.storages is storages:
                    return  # another thread admitted it meanwhile
                self._retired.append(old)  # a new SDK or another set of readers: flushed once more
            self._series[key] = _Series(dict(attributes), real, storages, aggregations, self._buckets)
        if aggregations is not None:
            _hook_into(consumer)

    def flush(self) -> None:
        """Merge what was recorded since the last flush into the SDK's aggregations."""
        with self._lock:
            retired, self._retired = self._retired, []
            for series in (*retired, *self._series.values()):
                if series.pending:
                    self._fold(series)
            work = [(series, series.take()) for series in (*retired, *self._series.values()) if series.dirty]
        candidates = []
        for series, (counts, total, low, high, last, sampled) in work:
            for aggregation in series.aggregations:
                _merge(aggregation, counts, total, low, high)
            for index, latest in enumerate(last):
                if latest is not None:
                    candidates.append((latest, series))
                    earlier = sampled[index]
                    if earlier is not None and earlier is not latest:
                        candidates.append((earlier, series))
        # offered in the order they were recorded, as the SDK offers every measurement: a
        # reservoir keeps each bucket's last accepted one (label sets that a view merges
        # into one point included), so it ends up with the same exemplars
        candidates.sort(key=lambda item: item[0][1])
        for (value, when, context), series in candidates:
            real = series.instrument
            if real._measurement_consumer._sdk_config.exemplar_filter.should_sample(
                value, when, series.attributes, context
            ):
                measurement = Measurement(value, when, real, context, series.attributes)
                for aggregation in series.aggregations:
                    aggregation._sample_exemplar(measurement, True)


def _aggregations(real, storages, attributes: dict, boundaries: tuple):
    """The SDK aggregations a measurement with `attributes` updated (one per reader and view), or None."""
    found = []
    for storage in storages.values():
        matches = storage._instrument_view_instrument_matches.get(real)
        if matches is None:
            return None
        for match in matches:
            keys = match._view._attribute_keys
            wanted = dict(attributes) if keys is None else {k: v for k, v in attributes.items() if k in keys}
            aggregation = None
            for candidate in list(match._attributes_aggregation.values()):
                if candidate._attributes == wanted:
                    aggregation = candidate
                    break
            if (
                type(aggregation) is not _ExplicitBucketHistogramAggregation
                or tuple(aggregation._boundaries) != boundaries
            ):
                return None
            found.append(aggregation)
    return found


def _merge(aggregation, counts, total, low, high) -> None:
    with aggregation._lock:
        value = aggregation._value
        if value is None:
            value = aggregation._value = aggregation._get_empty_bucket_counts()
        for index, count in enumerate(counts):
            if count:
                value[index] += count
        aggregation._sum += total
        if aggregation._record_min_max:
            aggregation._min = min(aggregation._min, low)
            aggregation._max = max(aggregation._max, high)


# --- the collection hook ---------------------------------------------------------------
_histograms: "weakref.WeakSet[HotHistogram]" = weakref.WeakSet()
_registry_lock = module_lock()
_hooked: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # consumers with the hook (bounded by providers)


class _CollectHook:
    """Registered with a MeterProvider's measurement consumer like an observable instrument:
    the SDK calls `callback` at the start of every collection, before reading its
    aggregations. It merges every HotHistogram's pending values and observes nothing,
    so it exports nothing itself."""

    def callback(self, _options=None):
        flush_all()
        return ()


def _hook_into(consumer) -> None:
    with _registry_lock:
        if consumer in _hooked:
            return
        _hooked[consumer] = True
    consumer.register_asynchronous_instrument(_CollectHook())


def flush_all() -> None:
    with _registry_lock:
        histograms = list(_histograms)
    for histogram in histograms:
        try:
            histogram.flush()
        except Exception:
            internal_error("histogram flush")
