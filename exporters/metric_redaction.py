"""Metric redaction: every attribute value of every exported metric point, masked like span attributes.

Metric labels come from many places: mailscope's own instruments (a queue key
such as `email_queue:<address>` on `mailscope.queue.*`), and every other
instrumentation's. None of them passes through the span pipeline, so the
redaction happens where all of them meet: each MetricReader of the SDK
MeterProvider that mailscope configured gets its `_receive_metrics` (what
`MetricReader.collect` hands each collection to) wrapped by `install`. Push
readers (PeriodicExportingMetricReader feeding OTLP gRPC/HTTP or otlp_json_file)
and pull readers (the Prometheus endpoint, collected on each scrape) alike only
ever see the redacted collection.

Cost: nothing per measurement. At each collection a redactor looks every point's
attribute set up in a bounded cache (`CACHE_MAX` sets, cleared when full), keyed
by the set itself; an attribute set is searched for addresses once, then served
from the cache. A collection without an address anywhere is handed on as the
same objects.

Merging: two points of one metric whose attribute sets differ only in the
redacted part (`email_queue:a@x.com`, `email_queue:b@x.com`) become one series:
sums and histograms add up (counts, sums, buckets; min of mins, max of maxes;
exponential histograms are brought to a common scale first); start time is the
earliest, time the latest. A gauge keeps the largest value: order-independent,
and for depths and ages the worst case, which is what alerts look at.

Exemplars: their filtered attributes are redacted too.

Fail closed: if a collection cannot be redacted, it is not exported (one error
is logged) rather than exported unredacted.
"""

from __future__ import annotations

from dataclasses import replace

from opentelemetry.sdk.metrics.export import (
    Buckets,
    ExponentialHistogramDataPoint,
    Gauge,
    HistogramDataPoint,
    Sum,
)

from mailscope._safety import internal_error
from mailscope.processors.redact import MODES, redact_attributes

CACHE_MAX = 4096
_MISS = object()
_MIN_SCALE = -10  # the OTel data model's smallest exponential histogram scale
_DEFAULT_MAX_BUCKETS = 160  # the SDK's default exponential histogram max_size


def _key(attributes):
    try:
        return frozenset(attributes.items())
    except TypeError:  # an unhashable value (a list): the sorted repr stands in
        return repr(sorted(attributes.items(), key=lambda item: item[0]))


class MetricRedactor:
    def __init__(self, mode: str = "domain", cache_max: int = CACHE_MAX):
        if mode not in MODES:
            raise ValueError(f"unknown redaction mode {mode!r}")
        self.mode = mode
        self.cache_max = cache_max
        self._cache: dict = {}  # attribute set -> redacted dict, or None when it holds no address

    def attributes(self, attributes):
        """`attributes` with every address masked; the same object when there is none."""
        if not attributes or self.mode == "off":
            return attributes
        key = _key(attributes)
        cached = self._cache.get(key, _MISS)
        if cached is _MISS:
            cached = redact_attributes(attributes, self.mode)
            if len(self._cache) >= self.cache_max:
                self._cache.clear()
            self._cache[key] = cached
        return attributes if cached is None else cached

    # --- the collection ---------------------------------------------------------------
    def metrics_data(self, data):
        """The collection with every point's attributes redacted and colliding points merged."""
        if self.mode == "off":
            return data
        resource_metrics = []
        changed = False
        for rm in data.resource_metrics:
            scope_metrics = []
            rm_changed = False
            for sm in rm.scope_metrics:
                metrics = [self._metric(metric) for metric in sm.metrics]
                if any(new is not old for new, old in zip(metrics, sm.metrics)):
                    rm_changed = True
                    sm = replace(sm, metrics=metrics)
                scope_metrics.append(sm)
            if rm_changed:
                changed = True
                rm = replace(rm, scope_metrics=scope_metrics)
            resource_metrics.append(rm)
        return replace(data, resource_metrics=resource_metrics) if changed else data

    def _metric(self, metric):
        data = metric.data
        points = data.data_points
        new_points = [self._point(point) for point in points]
        if all(new is old for new, old in zip(new_points, points)):
            return metric
        return replace(metric, data=replace(data, data_points=_merge_points(data, new_points)))

    def _point(self, point):
        attributes = self.attributes(point.attributes)
        exemplars = point.exemplars
        new_exemplars = [self._exemplar(e) for e in exemplars] if exemplars else exemplars
        if attributes is point.attributes and all(new is old for new, old in zip(new_exemplars, exemplars)):
            return point
        return replace(point, attributes=attributes, exemplars=new_exemplars)

    def _exemplar(self, exemplar):
        filtered = exemplar.filtered_attributes
        redacted = self.attributes(filtered) if filtered else filtered
        return exemplar if redacted is filtered else replace(exemplar, filtered_attributes=redacted)


# --- merging points whose attributes became equal ------------------------------------
def _merge_points(data, points):
    merged: dict = {}
    for point in points:
        key = _key(point.attributes or {})
        seen = merged.get(key)
        merged[key] = point if seen is None else _merge(data, seen, point)
    return list(merged.values())


def _times(a, b) -> dict:
    return {
        "start_time_unix_nano": min(a.start_time_unix_nano, b.start_time_unix_nano),
        "time_unix_nano": max(a.time_unix_nano, b.time_unix_nano),
        "exemplars": [*a.exemplars, *b.exemplars],
    }


def _merge(data, a, b):
    if isinstance(data, Gauge):
        return max(a, b, key=lambda p: (p.value, p.time_unix_nano))
    if isinstance(data, Sum):
        return replace(a, value=a.value + b.value, **_times(a, b))
    if isinstance(a, HistogramDataPoint):
        if tuple(a.explicit_bounds) != tuple(b.explicit_bounds):  # one metric has one set of bounds
            return max(a, b, key=lambda p: p.count)
        return replace(
            a, count=a.count + b.count, sum=a.sum + b.sum, min=min(a.min, b.min), max=max(a.max, b.max),
            bucket_counts=[x + y for x, y in zip(a.bucket_counts, b.bucket_counts)], **_times(a, b),
        )
    if isinstance(a, ExponentialHistogramDataPoint):
        return _merge_exponential(a, b, **_times(a, b))
    return a  # an unknown point type: keep one rather than export two series with one label set


def _indexed(buckets: Buckets, shift: int) -> dict:
    out: dict = {}
    for i, count in enumerate(buckets.bucket_counts):
        if count:
            index = (buckets.offset + i) >> shift
            out[index] = out.get(index, 0) + count
    return out


def _width(indexed: dict) -> int:
    return max(indexed) - min(indexed) + 1 if indexed else 0


def _as_buckets(indexed: dict) -> Buckets:
    if not indexed:
        return Buckets(offset=0, bucket_counts=[])
    low = min(indexed)
    return Buckets(offset=low, bucket_counts=[indexed.get(i, 0) for i in range(low, max(indexed) + 1)])


def _merge_exponential(a, b, **times):
    limit = max(_DEFAULT_MAX_BUCKETS, len(a.positive.bucket_counts), len(b.positive.bucket_counts),
                len(a.negative.bucket_counts), len(b.negative.bucket_counts))
    scale = min(a.scale, b.scale)
    while True:
        positive, negative = {}, {}
        for point in (a, b):
            shift = point.scale - scale
            for side, buckets in ((positive, point.positive), (negative, point.negative)):
                for index, count in _indexed(buckets, shift).items():
                    side[index] = side.get(index, 0) + count
        if scale <= _MIN_SCALE or (_width(positive) <= limit and _width(negative) <= limit):
            break
        scale -= 1  # too wide for one histogram: halve the resolution and try again
    return replace(
        a, count=a.count + b.count, sum=a.sum + b.sum, scale=scale, zero_count=a.zero_count + b.zero_count,
        positive=_as_buckets(positive), negative=_as_buckets(negative), flags=a.flags | b.flags,
        min=min(a.min, b.min), max=max(a.max, b.max), **times,
    )


# --- wiring ------------------------------------------------------------------------------
def wrap_reader(reader, redactor: MetricRedactor) -> bool:
    """Make `reader` receive redacted collections. False when it already does."""
    if getattr(reader, "_mailscope_redactor", None) is not None:
        return False
    receive = reader._receive_metrics

    def redacting_receive(metrics_data, timeout_millis: float = 10_000, **kwargs):
        if metrics_data is not None:
            try:
                metrics_data = redactor.metrics_data(metrics_data)
            except Exception:
                internal_error("metric redaction (the collection is not exported)")
                return
        receive(metrics_data, timeout_millis=timeout_millis, **kwargs)

    reader._receive_metrics = redacting_receive
    reader._mailscope_redactor = redactor
    return True


def install(meter_provider, mode: str) -> int:
    """Wrap every reader of an SDK MeterProvider; returns how many were wrapped."""
    if mode == "off":
        return 0
    readers = getattr(meter_provider, "_metric_readers", None) or ()
    redactor = MetricRedactor(mode)
    return sum(wrap_reader(reader, redactor) for reader in readers)
