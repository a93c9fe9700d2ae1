"""Metric labels are redacted at collection, like span attributes: the SDK's own readers, real instruments."""

import math

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import AlwaysOnExemplarFilter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View

from mailscope import attributes as attr
from mailscope.exporters import metric_redaction
from mailscope.exporters.metric_redaction import MetricRedactor, install, wrap_reader
from mailscope.metrics import Tally

QUEUE = attr.MESSAGING_DESTINATION_NAME


def _provider(mode="domain", **kwargs):
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], **kwargs)
    assert install(provider, mode) == (0 if mode == "off" else 1)
    return provider, reader


def _metric(reader, name):
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    return metric
    raise AssertionError(f"{name} not collected")


def _by_labels(metric):
    return {tuple(sorted(p.attributes.items())): p for p in metric.data.data_points}


def test_counter_series_that_differ_only_by_the_address_merge_into_one():
    provider, reader = _provider()
    counter = provider.get_meter("other.lib").create_counter("sends")
    counter.add(2, {QUEUE: "email_queue:ann@example.org", "ok": True})
    counter.add(3, {QUEUE: "email_queue:bob@example.org", "ok": True})
    counter.add(5, {QUEUE: "email_queue:bob@example.net", "ok": True})
    counter.add(7, {QUEUE: "plain", "ok": True})
    points = _by_labels(_metric(reader, "sends"))
    assert {k: p.value for k, p in points.items()} == {
        ((QUEUE, "email_queue:<redacted>@example.org"), ("ok", True)): 5,
        ((QUEUE, "email_queue:<redacted>@example.net"), ("ok", True)): 5,
        ((QUEUE, "plain"), ("ok", True)): 7,
    }
    merged = points[((QUEUE, "email_queue:<redacted>@example.org"), ("ok", True))]
    assert merged.start_time_unix_nano <= merged.time_unix_nano
    counter.add(1, {QUEUE: "email_queue:ann@example.org", "ok": True})  # cumulative: the next collection adds on
    assert _by_labels(_metric(reader, "sends"))[((QUEUE, "email_queue:<redacted>@example.org"), ("ok", True))].value == 6


def test_full_mode_and_off_mode():
    provider, reader = _provider("full")
    counter = provider.get_meter("m").create_counter("c")
    counter.add(1, {"to": "ann@example.org"})
    counter.add(1, {"to": "bob@example.net"})
    assert {k: p.value for k, p in _by_labels(_metric(reader, "c")).items()} == {(("to", "<redacted>@<redacted>"),): 2}

    provider, reader = _provider("off")
    counter = provider.get_meter("m").create_counter("c")
    counter.add(1, {"to": "ann@example.org"})
    assert list(_by_labels(_metric(reader, "c"))) == [(("to", "ann@example.org"),)]


def test_address_in_a_label_key_and_in_string_arrays():
    provider, reader = _provider()
    counter = provider.get_meter("m").create_up_down_counter("c")
    counter.add(4, {"user ann@example.org": "x", "rcpts": ("a@example.org", "plain")})
    counter.add(-1, {"user bob@example.org": "x", "rcpts": ("b@example.org", "plain")})
    points = _by_labels(_metric(reader, "c"))
    assert {k: p.value for k, p in points.items()} == {
        (("rcpts", ("<redacted>@example.org", "plain")), ("user <redacted>@example.org", "x")): 3,
    }


def test_histograms_add_up_buckets_count_sum_min_max():
    provider, reader = _provider()
    histogram = provider.get_meter("m").create_histogram("wait", explicit_bucket_boundaries_advisory=(1.0, 10.0))
    for value, who in ((0.5, "ann"), (5.0, "ann"), (20.0, "bob"), (0.1, "bob")):
        histogram.record(value, {QUEUE: f"q:{who}@example.org"})
    (point,) = _metric(reader, "wait").data.data_points
    assert point.attributes == {QUEUE: "q:<redacted>@example.org"}
    assert (point.count, point.sum, point.min, point.max) == (4, 25.6, 0.1, 20.0)
    assert list(point.bucket_counts) == [2, 1, 1]


def test_exponential_histograms_merge_at_a_common_scale():
    provider, reader = _provider(views=[View(instrument_name="lat", aggregation=ExponentialBucketHistogramAggregation())])
    histogram = provider.get_meter("m").create_histogram("lat")
    histogram.record(1.5, {"to": "ann@example.org"})  # one value: the finest scale
    for value in (0.001, 2.0, 3.0, 1000.0, 0.0):  # a wide range: a coarse scale
        histogram.record(value, {"to": "bob@example.org"})
    (point,) = _metric(reader, "lat").data.data_points
    assert point.attributes == {"to": "<redacted>@example.org"}
    assert point.count == 6 and point.zero_count == 1 and point.sum == pytest.approx(1006.501)
    assert sum(point.positive.bucket_counts) == 5 and (point.min, point.max) == (0.0, 1000.0)
    for value in (0.001, 1.5, 2.0, 3.0, 1000.0):  # each value counted in the bucket of its index at the merged scale
        index = math.ceil(math.log2(value) * 2**point.scale) - 1
        assert point.positive.bucket_counts[index - point.positive.offset] >= 1, value


def test_gauges_keep_the_largest_value():
    provider, reader = _provider()
    depths = {"q:ann@example.org": 3, "q:bob@example.org": 9, "q:cid@example.org": 4}
    provider.get_meter("m").create_observable_gauge(
        "depth", callbacks=[lambda options: [metric_redaction_observation(v, {QUEUE: k}) for k, v in depths.items()]]
    )
    (point,) = _metric(reader, "depth").data.data_points
    assert point.attributes == {QUEUE: "q:<redacted>@example.org"} and point.value == 9


def metric_redaction_observation(value, attributes):
    from opentelemetry.metrics import Observation

    return Observation(value, attributes)


def test_exemplar_filtered_attributes_are_redacted():
    provider, reader = _provider(
        exemplar_filter=AlwaysOnExemplarFilter(), views=[View(instrument_name="c", attribute_keys={"kind"})]
    )
    counter = provider.get_meter("m").create_counter("c")
    counter.add(1, {"kind": "send", "to": "ann@example.org"})
    (point,) = _metric(reader, "c").data.data_points
    assert point.exemplars and all(e.filtered_attributes == {"to": "<redacted>@example.org"} for e in point.exemplars)


def test_label_caps_still_end_in_other():
    provider, reader = _provider()
    tally = Tally(provider.get_meter("m"), "t", limit=2)
    for who in ("ann", "bob", "cid", "dan"):
        tally.add(1, {QUEUE: f"q:{who}@example.org"})
    tally.add(1, {QUEUE: "plain"})
    points = {p.attributes[QUEUE]: p.value for p in _metric(reader, "t").data.data_points}
    assert points == {"q:<redacted>@example.org": 2, attr.LABEL_OVERFLOW: 3}


def test_each_label_set_is_searched_once_and_the_cache_is_bounded(monkeypatch):
    calls = []
    real = metric_redaction.redact_attributes
    monkeypatch.setattr(metric_redaction, "redact_attributes", lambda a, m: calls.append(dict(a)) or real(a, m))
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    redactor = MetricRedactor("domain", cache_max=3)
    assert wrap_reader(reader, redactor) and not wrap_reader(reader, redactor)
    counter = provider.get_meter("m").create_counter("c")
    counter.add(1, {"to": "ann@example.org"})
    counter.add(1, {"to": "plain"})
    for _ in range(3):
        counter.add(1, {"to": "ann@example.org"})
        reader.get_metrics_data()
    assert len(calls) == 2  # two label sets, three collections
    for i in range(10):
        counter.add(1, {"n": i})
    reader.get_metrics_data()
    assert len(redactor._cache) <= 3


def test_a_clean_collection_is_handed_on_unchanged():
    redactor = MetricRedactor("domain")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("m").create_counter("c").add(1, {"to": "plain", "n": 1})
    data = reader.get_metrics_data()
    assert redactor.metrics_data(data) is data


def test_a_collection_that_cannot_be_redacted_is_not_exported(monkeypatch, caplog):
    provider, reader = _provider()
    provider.get_meter("m").create_counter("c").add(1, {"to": "ann@example.org"})

    def broken(attributes, mode):
        raise RuntimeError("boom")

    monkeypatch.setattr(metric_redaction, "redact_attributes", broken)
    assert reader.get_metrics_data() is None
    assert "metric redaction" in caplog.text


@pytest.mark.parametrize("mode", ["domain", "full"])
def test_unknown_modes_are_refused_and_known_ones_accepted(mode):
    assert MetricRedactor(mode).mode == mode
    with pytest.raises(ValueError):
        MetricRedactor("partial")
