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
by the identity of the attribute dict, which the SDK keeps per series: a series'
labels are searched for addresses once, then served from the cache. A collection without an address anywhere is handed on as the same
objects.

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
        # id(attribute dict) -> (that dict, its redacted copy or None when it holds no address, the
        # redacted set's key). The SDK hands every collection of a series the same dict, so a warm
        # lookup is one dict access; holding the dict keeps its id from being reused.
        self._cache: dict = {}

    def _lookup(self, attributes):
        entry = self._cache.get(id(attributes))
        if entry is None or entry[0] is not attributes:
            redacted = redact_attributes(attributes, self.mode) if attributes else None
            entry = (attributes, redacted, _key(attributes if redacted is None else redacted))
            if len(self._cache) >= self.cache_max:
                self._cache.clear()
            self._cache[id(attributes)] = entry
        return entry

    def attributes(self, attributes):
        """`attributes` with every address masked; the same object when there is none."""
        if not attributes or self.mode == "off":
            return attributes
        redacted = self._lookup(attributes)[1]
        return attributes if redacted is None else redacted

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
        groups: dict = {}  # redacted attribute set -> [(point, redacted attributes, redacted exemplars)]
        changed = False
        for point in data.data_points:
            attributes = point.attributes
            if attributes:
                _, redacted, key = self._lookup(attributes)
                if redacted is not None:
                    attributes = redacted
                    changed = True
            else:
                key = ()
            exemplars = self._exemplars(point.exemplars)
            changed = changed or exemplars is not point.exemplars
            groups.setdefault(key, []).append((point, attributes, exemplars))
        if not changed:
            return metric
        points = [_combine(data, members) for members in groups.values()]
        return replace(metric, data=replace(data, data_points=points))

    def _exemplars(self, exemplars):
        if not exemplars:
            return exemplars
        new = [self._exemplar(e) for e in exemplars]
        return exemplars if all(a is b for a, b in zip(new, exemplars)) else new

    def _exemplar(self, exemplar):
        filtered = exemplar.filtered_attributes
        redacted = self.attributes(filtered) if filtered else filtered
        return exemplar if redacted is filtered else replace(exemplar, filtered_attributes=redacted)


# --- merging points whose attributes became equal ------------------------------------
def _combine(data, members):
    """One point from the points of `members` (whose redacted attributes are equal)."""
    point, attributes, _ = members[0]
    if len(members) == 1:
        exemplars = members[0][2]
        if attributes is point.attributes and exemplars is point.exemplars:
            return point
        return replace(point, attributes=attributes, exemplars=exemplars)
    if isinstance(data, Gauge):
        best = max(members, key=lambda m: (m[0].value, m[0].time_unix_nano))
        return replace(best[0], attributes=attributes, exemplars=best[2])
    points = [m[0] for m in members]
    common = {
        "attributes": attributes,
        "start_time_unix_nano": min(p.start_time_unix_nano for p in points),
        "time_unix_nano": max(p.time_unix_nano for p in points),
        "exemplars": [e for m in members for e in m[2]],
    }
    if isinstance(data, Sum):
        return replace(point, value=sum(p.value for p in points), **common)
    if isinstance(point, HistogramDataPoint):
        bounds = tuple(point.explicit_bounds)
        if any(tuple(p.explicit_bounds) != bounds for p in points):  # one metric has one set of bounds
            best = max(members, key=lambda m: m[0].count)
            return replace(best[0], attributes=attributes, exemplars=best[2])
        return replace(
            point, count=sum(p.count for p in points), sum=sum(p.sum for p in points),
            min=min(p.min for p in points), max=max(p.max for p in points),
            bucket_counts=[sum(column) for column in zip(*(p.bucket_counts for p in points))], **common,
        )
    if isinstance(point, ExponentialHistogramDataPoint):
        merged = points[0]
        for other in points[1:]:
            merged = _merge_exponential(merged, other)
        return replace(merged, **common)
    return replace(point, attributes=attributes)  # an unknown point type: one series per label set


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


def _merge_exponential(a, b):
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
        min=min(a.min, b.min), max=max(a.max, b.max),
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
    from mailscope.exporters import export_locks

    readers = getattr(meter_provider, "_metric_readers", None) or ()
    for reader in readers:
        export_locks.guard_metric_reader(reader)
    if mode == "off":
        return 0
    redactor = MetricRedactor(mode)
    return sum(wrap_reader(reader, redactor) for reader in readers)
