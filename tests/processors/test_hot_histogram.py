"""HotHistogram against the SDK's own Histogram.record: the same values, the same exported points.

Two real SDK MeterProviders take the same measurements, one through the SDK's
`record`, one through a HotHistogram; every collection of each must export the
same count, min, max, bucket counts and exemplars (their value and the span they
point to), and the same sum up to the rounding of float additions done in
another order.
"""

import logging

import pytest
from opentelemetry.sdk.metrics import Histogram as SdkHistogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.trace import TracerProvider

from mailscope.histograms import HotHistogram
from mailscope.metrics import DURATION_BUCKETS_S

NAME = "mailscope.operation.duration"


def histogram_of(provider):
    return provider.get_meter("mailscope").create_histogram(
        NAME, unit="s", explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S
    )


class Sum(float):
    """A sum compared up to the rounding of float additions in another order."""

    def __eq__(self, other):
        return other == pytest.approx(float(self), rel=1e-12, abs=1e-15)

    __hash__ = float.__hash__


def points(reader):
    """{labels: (count, sum, min, max, buckets, exemplars)} of the histogram in one collection."""
    data = reader.get_metrics_data()
    out = {}
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name != NAME:
                    continue
                for p in metric.data.data_points:
                    exemplars = sorted(
                        (e.value, e.span_id, e.trace_id, tuple(sorted((e.filtered_attributes or {}).items())))
                        for e in p.exemplars
                    )
                    labels = tuple(sorted(p.attributes.items()))
                    if hasattr(p, "bucket_counts") and hasattr(p, "explicit_bounds"):
                        out[labels] = (p.count, Sum(p.sum), p.min, p.max, tuple(p.bucket_counts), exemplars)
                    else:
                        out[labels] = (p.count, Sum(p.sum), p.min, p.max, None, exemplars)
    return out


class Pair:
    """The same measurements into a plain SDK histogram and a HotHistogram, on two providers."""

    def __init__(self, readers=None, views=()):
        readers = readers or (lambda: [InMemoryMetricReader()])
        self.plain_readers, self.hot_readers = readers(), readers()
        self.plain_provider = MeterProvider(metric_readers=self.plain_readers, views=list(views))
        self.hot_provider = MeterProvider(metric_readers=self.hot_readers, views=list(views))
        self.plain = histogram_of(self.plain_provider)
        self.hot = HotHistogram(histogram_of(self.hot_provider), DURATION_BUCKETS_S)

    def record(self, value, labels):
        self.plain.record(value, labels)
        self.hot.record(value, labels)

    def collections(self):
        return [(points(a), points(b)) for a, b in zip(self.plain_readers, self.hot_readers)]

    def close(self):
        self.plain_provider.shutdown()
        self.hot_provider.shutdown()


@pytest.fixture
def pair():
    made = []

    def make(**kwargs):
        made.append(Pair(**kwargs))
        return made[-1]

    yield make
    for p in made:
        p.close()


VALUES = [0.0004, 0.003, 0.003, 0.07, 0.2, 1.7, 0.0009, 42.0, 75.0, 0.011, 0.0025]
LABELS = [
    {"mailscope.operation": "send", "email.provider": "smtp", "outcome": "ok"},
    {"mailscope.operation": "personalize", "email.template.name": "welcome", "outcome": "ok"},
    {"mailscope.operation": "send", "email.provider": "smtp", "outcome": "error", "mailscope.error.category": "recipient"},
]


def record_inside_spans(p, rounds=3):
    """Values recorded at the end of child spans (exemplars point at the sampled parent) and of roots (none)."""
    tracer = TracerProvider().get_tracer("t")
    for round_ in range(rounds):
        for i, value in enumerate(VALUES):
            labels = LABELS[(i + round_) % len(LABELS)]
            if i % 3 == 0:
                p.record(value, labels)  # no span: no exemplar
            else:
                with tracer.start_as_current_span(f"parent-{i}"):
                    p.record(value * (round_ + 1), labels)


def test_every_collection_exports_the_same_points_and_exemplars(pair):
    p = pair()
    for _ in range(3):  # cumulative: each collection adds to the previous ones
        record_inside_spans(p)
        [(plain, hot)] = p.collections()
        assert plain and hot == plain
        assert any(point[5] for point in plain.values())  # exemplars were there to compare
    assert len(p.hot._series) == len(LABELS)  # the in-process path was taken
    assert all(s.aggregations for s in p.hot._series.values())


def test_delta_temporality_and_two_readers(pair):
    def readers():
        return [
            InMemoryMetricReader(preferred_temporality={SdkHistogram: AggregationTemporality.DELTA}),
            InMemoryMetricReader(),
        ]

    p = pair(readers=readers)
    for _ in range(3):
        record_inside_spans(p, rounds=2)
        for plain, hot in p.collections():
            assert plain and hot == plain
    assert all(s.aggregations and len(s.aggregations) == 2 for s in p.hot._series.values())


def test_a_view_keeping_some_labels_merges_into_its_filtered_points(pair):
    p = pair(views=[View(instrument_name=NAME, attribute_keys={"mailscope.operation"})])
    record_inside_spans(p)
    [(plain, hot)] = p.collections()
    assert set(plain) == {(("mailscope.operation", "send"),), (("mailscope.operation", "personalize"),)}
    assert hot == plain
    assert all(s.aggregations for s in p.hot._series.values())


def test_a_view_with_another_aggregation_gets_every_value_through_the_sdk(pair):
    p = pair(views=[View(instrument_name=NAME, aggregation=ExponentialBucketHistogramAggregation())])
    record_inside_spans(p)
    [(plain, hot)] = p.collections()
    assert plain and hot == plain
    assert all(s.aggregations is None for s in p.hot._series.values())


def test_negative_values_are_dropped_with_the_sdks_warning(pair, caplog):
    p = pair()
    with caplog.at_level(logging.WARNING):
        p.hot.record(-1.0, LABELS[0])
    assert "non-negative" in caplog.text
    p.record(0.5, LABELS[0])
    [(plain, hot)] = p.collections()
    assert hot == plain and hot[tuple(sorted(LABELS[0].items()))][0] == 1


def test_label_sets_beyond_the_limit_go_through_the_sdk(pair):
    p = pair()
    p.hot.limit = 2
    for n in range(5):
        for value in VALUES:
            p.record(value, {"mailscope.operation": "send", "email.provider": f"p{n}"})
    [(plain, hot)] = p.collections()
    assert len(plain) == 5 and hot == plain
    assert len(p.hot._series) == 2
