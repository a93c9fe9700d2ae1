"""Tally: the hot-path counter behind mailscope.template.cache, read through the real SDK."""

import threading

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from mailscope import attributes as attr
from mailscope.metrics import Tally


def _points(reader, name):
    data = reader.get_metrics_data()
    found = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    assert metric.data.is_monotonic
                    for point in metric.data.data_points:
                        found[tuple(sorted(point.attributes.items()))] = point.value
    return found


def test_tally_exports_cumulative_monotonic_sums_and_caps_label_sets():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    tally = Tally(provider.get_meter("t"), "loads", limit=2)
    threads = [threading.Thread(target=lambda: [tally.add(1, {"engine": "jinja2", "hit": True}) for _ in range(500)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tally.add(2, {"engine": "jinja2", "hit": False})
    assert _points(reader, "loads") == {(("engine", "jinja2"), ("hit", False)): 2, (("engine", "jinja2"), ("hit", True)): 2000}
    tally.add(1, {"engine": "liquid", "hit": True})  # a third label set: over the cap
    tally.add(1, {"engine": "mako", "hit": False})
    points = _points(reader, "loads")
    assert points[(("engine", attr.LABEL_OVERFLOW), ("hit", attr.LABEL_OVERFLOW))] == 2
    assert points[(("engine", "jinja2"), ("hit", True))] == 2000  # cumulative: still there
    provider.shutdown()


def test_label_cap_counts_per_recipient_values_once_in_their_redacted_form(monkeypatch):
    from mailscope.config import reload_settings
    from mailscope.metrics import LabelCap

    monkeypatch.setenv("MAILSCOPE_REDACT", "domain")
    reload_settings()
    cap = LabelCap(3)
    got = [cap(f"email_queue:user{i}@shop.example") for i in range(50)]
    assert len(set(got)) == 1 and "user" not in got[0] and got[0].endswith("@shop.example")
    # the cap still has room for real queues, and still overflows to `other`
    assert [cap("digest"), cap("alerts"), cap("billing")] == ["digest", "alerts", "other"]
    assert len(cap) == 3
    monkeypatch.setenv("MAILSCOPE_REDACT", "off")
    reload_settings()
    assert LabelCap(3)("email_queue:a@shop.example") == "email_queue:a@shop.example"
    monkeypatch.delenv("MAILSCOPE_REDACT")
    reload_settings()
