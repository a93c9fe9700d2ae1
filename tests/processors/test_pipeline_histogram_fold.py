"""HotHistogram folds measurements in batches (`FOLD_EVERY`): many values between collections,
and values from several threads at once, export what the SDK's own record exports."""

import random
import threading

from opentelemetry.sdk.trace import TracerProvider

from mailscope.histograms import FOLD_EVERY

from .test_hot_histogram import LABELS, Pair, pair  # noqa: F401 (pair is a fixture)


def test_many_values_between_collections_export_the_sdks_points_and_exemplars(pair):  # noqa: F811
    p = pair()
    tracer = TracerProvider().get_tracer("t")
    rng = random.Random(5)
    for _ in range(3):
        for i in range(7 * FOLD_EVERY + 5):  # several folds and a remainder left for the collection
            value = rng.choice([0.0004, 0.003, 0.07, 0.2, 1.7, 42.0]) * rng.uniform(0.5, 2)
            labels = LABELS[i % len(LABELS)]
            if i % 4 == 0:
                p.record(value, labels)
            else:
                with tracer.start_as_current_span("parent"):
                    p.record(value, labels)
        [(plain, hot)] = p.collections()
        assert plain and hot == plain
        assert any(point[5] for point in plain.values())


def test_values_recorded_from_several_threads_are_all_counted(pair):  # noqa: F811
    p = pair()
    labels = LABELS[0]
    per_thread = 20 * FOLD_EVERY + 3
    barrier = threading.Barrier(4)

    def work(seed):
        barrier.wait()
        rng = random.Random(seed)
        for _ in range(per_thread):
            p.hot.record(rng.choice([0.001, 0.02, 0.3]), labels)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(4):  # the same values through the SDK, for comparison
        rng = random.Random(n)
        for _ in range(per_thread):
            p.plain.record(rng.choice([0.001, 0.02, 0.3]), labels)
    [(plain, hot)] = p.collections()
    (point,) = hot.values()
    assert point[0] == 4 * per_thread
    assert hot == plain


class AlwaysOnPair(Pair):
    """With the always-on exemplar filter every bucket's last measurement is its exemplar."""

    def __init__(self):
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics._internal.exemplar import AlwaysOnExemplarFilter
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        from mailscope.histograms import HotHistogram
        from mailscope.metrics import DURATION_BUCKETS_S

        from .test_hot_histogram import histogram_of

        self.plain_readers, self.hot_readers = [InMemoryMetricReader()], [InMemoryMetricReader()]
        self.plain_provider = MeterProvider(metric_readers=self.plain_readers, exemplar_filter=AlwaysOnExemplarFilter())
        self.hot_provider = MeterProvider(metric_readers=self.hot_readers, exemplar_filter=AlwaysOnExemplarFilter())
        self.plain = histogram_of(self.plain_provider)
        self.hot = HotHistogram(histogram_of(self.hot_provider), DURATION_BUCKETS_S)


def test_each_buckets_last_measurement_is_its_exemplar_across_folds():
    p = AlwaysOnPair()
    rng = random.Random(9)
    try:
        for _ in range(2):
            for _ in range(5 * FOLD_EVERY + 7):
                p.record(rng.choice([0.0004, 0.003, 0.07]) * rng.uniform(0.9, 1.1), LABELS[0])
            [(plain, hot)] = p.collections()
            assert plain and hot == plain
            assert all(point[5] for point in plain.values())
    finally:
        p.close()
